"""Simulated boards: network namespaces on a test LAN bridge in the root namespace.

Each board gets one veth pair (`eth0` inside, `pkd-<run>-<i>` on the bridge), one
address from the run's /24, a loopback, and only the connected LAN route, so
nothing in a board can reach past this machine. The root namespace gets one
address on the bridge (to reach the master) and nothing else: no routes to the
pod or service ranges. Everything a run makes carries its run id, so `teardown`
needs nothing but that id, even after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from core import processes
from pikube.dev import naming
from pikube.dev.errors import DevError
from pikube.dev.naming import RunId

NETNS_DIR = Path("/run/netns")
# Board names become node names and part of namespace names: DNS labels, kept short.
_BOARD_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
# Serialises range picking between runs that start at the same moment.
LOCK_FILE = Path("/run/pikube-dev.lock")


@dataclass(frozen=True)
class Board:
    """One simulated board: a network namespace with one address on the LAN."""

    name: str
    index: int
    netns: str
    address: IPv4Address
    host_link: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "netns": self.netns,
            "address": str(self.address),
            "host_link": self.host_link,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Board:
        return cls(
            name=str(data["name"]),
            index=int(data["index"]),
            netns=str(data["netns"]),
            address=IPv4Address(data["address"]),
            host_link=str(data["host_link"]),
        )


@dataclass(frozen=True)
class Lan:
    """A run's boards and the bridge that joins them."""

    run: RunId
    subnet: IPv4Network
    bridge: str
    host_address: IPv4Address
    boards: tuple[Board, ...]

    def board(self, name: str) -> Board:
        for board in self.boards:
            if board.name == name:
                return board
        names = ", ".join(b.name for b in self.boards)
        raise DevError(f"there is no board named {name!r} in this dev cluster; its boards are {names}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "subnet": str(self.subnet),
            "bridge": self.bridge,
            "host_address": str(self.host_address),
            "boards": [b.to_dict() for b in self.boards],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lan:
        return cls(
            run=RunId(str(data["run"])),
            subnet=IPv4Network(data["subnet"]),
            bridge=str(data["bridge"]),
            host_address=IPv4Address(data["host_address"]),
            boards=tuple(Board.from_dict(b) for b in data["boards"]),
        )


def plan(run: RunId, names: Sequence[str], subnet: IPv4Network) -> Lan:
    """The LAN for `names` on `subnet`: names, addresses and links, nothing created yet."""
    bad = [name for name in names if not _BOARD_NAME.match(name)]
    if bad:
        raise DevError(f"board names are lowercase letters, digits and dashes, not {bad[0]!r}.")
    if len(set(names)) != len(names):
        raise DevError("board names must be unique.")
    if len(names) > 200:
        raise DevError("a dev LAN holds at most 200 boards.")
    boards = tuple(
        Board(
            name=name,
            index=i,
            netns=naming.netns_name(run, name),
            address=naming.board_address(subnet, i),
            host_link=naming.host_link_name(run, i),
        )
        for i, name in enumerate(names)
    )
    return Lan(
        run=run,
        subnet=subnet,
        bridge=naming.bridge_name(run),
        host_address=naming.host_address(subnet),
        boards=boards,
    )


def _iproute(netns: str | None = None) -> Any:
    from pyroute2 import IPRoute

    # flags=0: never create a namespace by accident when opening one.
    return IPRoute() if netns is None else IPRoute(netns=netns, flags=0)


def used_networks() -> list[IPv4Network]:
    """IPv4 networks the root namespace already uses (its addresses and non-default routes)."""
    found: list[IPv4Network] = []
    with _iproute() as ipr:
        for msg in ipr.addr("dump", family=2):
            found.append(IPv4Network(f"{msg.get('address')}/{msg['prefixlen']}", strict=False))
        for msg in ipr.route("dump", family=2):
            if msg["dst_len"] and msg.get("dst"):
                found.append(IPv4Network(f"{msg.get('dst')}/{msg['dst_len']}", strict=False))
    return found


@contextlib.contextmanager
def _lan_lock() -> Iterator[None]:
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def create(names: Sequence[str], run: RunId | None = None) -> Lan:
    """Create a LAN with one board per name (the first is usually the master).

    On any failure, everything made so far is removed before the error propagates.
    """
    from pyroute2 import netns

    run = run or naming.new_run_id()
    try:
        with _lan_lock():
            lan = plan(run, names, naming.pick_subnet(used_networks()))
            with _iproute() as ipr:
                ipr.link("add", ifname=lan.bridge, kind="bridge")
                bridge = ipr.link_lookup(ifname=lan.bridge)[0]
                ipr.addr("add", index=bridge, address=str(lan.host_address), prefixlen=24)
                ipr.link("set", index=bridge, state="up")
        for board in lan.boards:
            netns.create(board.netns)
            with _iproute() as ipr:
                ipr.link(
                    "add",
                    ifname=board.host_link,
                    kind="veth",
                    peer={"ifname": "eth0", "net_ns_fd": board.netns},
                )
                host_end = ipr.link_lookup(ifname=board.host_link)[0]
                ipr.link("set", index=host_end, master=bridge, state="up")
            with _iproute(board.netns) as ns:
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
                eth0 = ns.link_lookup(ifname="eth0")[0]
                ns.addr("add", index=eth0, address=str(board.address), prefixlen=24)
                ns.link("set", index=eth0, state="up")
    except BaseException:
        teardown(run)
        raise
    return lan


def netns_file(name: str) -> Path:
    return NETNS_DIR / name


def namespaces_of(run: RunId) -> list[str]:
    """The network namespaces of `run` that exist now."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if naming.run_of_netns(n) == run)


def links_of(run: RunId) -> list[str]:
    """The root-namespace links of `run` (bridge and host veth ends) that exist now."""
    with _iproute() as ipr:
        names = [msg.get("ifname") for msg in ipr.link("dump")]
    return sorted(n for n in names if isinstance(n, str) and naming.run_of_link(n) == run)


def leftovers(run: RunId) -> list[str]:
    """Whatever `run` made that still exists, by name; empty after a complete teardown."""
    return [f"netns {n}" for n in namespaces_of(run)] + [f"link {n}" for n in links_of(run)]


def teardown(run: RunId, timeout: float = 10.0) -> None:
    """Remove every namespace and link of `run` and stop processes inside its boards.

    Works from the run id alone, so it also cleans up after a crash; safe to repeat.
    """
    from pyroute2 import netns

    if not naming.is_run_id(run):
        raise ValueError(f"not a run id: {run!r}")
    spaces = namespaces_of(run)
    inside = [pid for name in spaces for pid in processes.pids_in_netns(netns_file(name))]
    processes.terminate(inside, timeout)
    with _iproute() as ipr:
        for name in links_of(run):
            for index in ipr.link_lookup(ifname=name):
                with contextlib.suppress(Exception):  # a veth goes when its peer's namespace does
                    ipr.link("del", index=index)
    for name in spaces:
        with contextlib.suppress(FileNotFoundError):
            netns.remove(name)


def board_command(board: Board, argv: Sequence[str]) -> list[str]:
    """`argv` wrapped so that it runs inside `board`'s network namespace."""
    return ["ip", "netns", "exec", board.netns, *argv]


def run_in_board(
    board: Board, argv: Sequence[str], timeout: float | None = 30.0, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside `board` and capture its output as text."""
    return subprocess.run(board_command(board, argv), capture_output=True, text=True, timeout=timeout, check=check)
