"""Joining simulated boards to a master, one or a hundred at a time.

Boards join the way a real worker does — with a join token through
`core.jointoken.join`, which pins the master's CA before sending the
secret — or, when a test already holds node credentials, straight from them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.jointoken import join as join_cluster
from pikube.sim.api import Credentials
from pikube.sim.board import Board, BoardSpec


def join(server: str, token: str, name: str) -> Credentials:
    creds = join_cluster(token, server, name)
    return Credentials(server, creds.ca_pem, creds.cert_pem, creds.key_pem)


class Fleet:
    """Boards joined with one token; `add` starts one, `halt_all` silences them all."""

    def __init__(self, server: str, token: str, template: BoardSpec | None = None) -> None:
        self.server = server
        self.token = token
        self.template = template or BoardSpec(name="pi")
        self.boards: dict[str, Board] = {}

    def add(self, name: str = "", **overrides: Any) -> Board:
        name = name or f"{self.template.name}-{len(self.boards) + 1}"
        address = overrides.pop("address", f"192.168.50.{10 + len(self.boards) % 240}")
        spec = replace(self.template, name=name, address=address, **overrides)
        board = Board(spec, join(self.server, self.token, name)).start()
        self.boards[name] = board
        return board

    def __getitem__(self, name: str) -> Board:
        return self.boards[name]

    def halt_all(self) -> None:
        for board in self.boards.values():
            if board.running:
                board.halt()
