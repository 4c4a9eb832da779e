"""Simulated Pis for the bootstrap's integration tests: boards (network namespaces), a master made by enable-master.

`pis` is shared by a test module: boards `pi-1` (the master, made by a real
`enable-master --init none`), `pi-2`, `pi-3`; each board's config and data
live under the module's tmp dir, exactly as `pikube dev up` lays them out.
Whatever a test leaves, `pikube reset --yes` on every board and the board
teardown remove it, and the end of the module checks nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core import processes
from core.kubeconfig import read_kubeconfig
from pikube.bootstrap.layout import Layout
from pikube.dev import boards, launch, naming
from pikube.dev.boards import Board, Lan
from tests.conftest import HARNESS_MADE, DevImages
from tests.master.conftest import kubectl_path

NAMES = ("pi-1", "pi-2", "pi-3")


@dataclass
class Pis:
    lan: Lan
    state_dir: Path
    docker_host: str
    docker: Any

    @property
    def master(self) -> Board:
        return self.lan.board("pi-1")

    def board(self, name: str) -> Board:
        return self.lan.board(name)

    def layout(self, name: str) -> Layout:
        return launch.layout(self.state_dir, name)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def token(self) -> str:
        return launch.join_token(self.state_dir, "pi-1")

    def pikube(self, board: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`pikube ARGS` inside `board` (as root, as on a Pi after `sudo`)."""
        return boards.run_in_board(self.board(board), launch.pikube_argv(*args), timeout=timeout)

    def dirs(self, board: str) -> list[str]:
        lay = self.layout(board)
        return ["--config-dir", str(lay.config_dir), "--data-dir", str(lay.data_dir)]

    def enable_worker(self, board: str, *extra: str, token: str | None = None,
                      master: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.pikube(board, "enable-worker", master or str(self.master.address), "--token",
                           token if token is not None else self.token, "--init", "none", *self.dirs(board),
                           "--docker-host", self.docker_host, *(extra or ("--node-name", board)))

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([kubectl_path("new"), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, timeout=60, check=False)
        assert not check or proc.returncode == 0, proc.stderr
        return proc

    def api(self, path: str) -> dict[str, Any]:
        from pikube.bootstrap import api

        return api.request(read_kubeconfig(self.kubeconfig), "GET", path)

    def node_ready(self, name: str) -> bool:
        from pikube.bootstrap import api

        return api.node_ready(read_kubeconfig(self.kubeconfig), name)

    def pikube_pids(self, board: str) -> list[int]:
        """pikube's own processes in the board (supervisor, master, agent): what a reboot would end."""
        pids = processes.pids_in_netns(boards.netns_file(self.board(board).netns))
        return [p for p in pids if "pikube" in " ".join(processes.cmdline(p))]

    def links(self, board: str) -> list[str]:
        out = boards.run_in_board(self.board(board), ["ip", "-j", "link"], check=True).stdout
        return [str(link["ifname"]) for link in json.loads(out)]


def wait(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.2)


@contextlib.contextmanager
def boards_of(names: list[str], state_dir: Path, docker_engine: Any, docker_client: Any) -> Iterator[Pis]:
    """Boards `names` on a LAN of their own; afterwards `pikube reset --yes` on every board, the boards torn
    down, and a check that nothing (namespaces, links, the boards' containers) is left."""
    run = naming.new_run_id()
    HARNESS_MADE.runs.add(run)
    lan = boards.create(names, run=run)
    made = Pis(lan, state_dir, docker_engine.host, docker_client)
    try:
        yield made
    finally:
        problems = launch.reset_boards(state_dir, lan.boards)
        boards.teardown(run)
        left = boards.leftovers(run) + [
            f"container {c.name}" for name in names
            for c in docker_client.containers.list(all=True, filters={"label": f"pikube.io/node={name}"})]
        assert not problems and not left, (problems, left)


@pytest.fixture(scope="module")
def pis(docker_engine: Any, dev_images: DevImages, docker_client: Any,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pis]:
    with boards_of(list(NAMES), tmp_path_factory.mktemp("pis"), docker_engine, docker_client) as made:
        launch.enable_master(made.state_dir, made.master, docker_engine.host, "host-gw", made.kubeconfig)
        yield made
