"""A throw-away cluster network made of namespaces: a LAN, boards on it, pods on the boards.

Everything lives in namespaces this module creates, named `pknt<6 hex>-…` per run;
even the LAN bridge sits in its own namespace, so the machine's root namespace
gets no link, address or route at all, and no namespace has a route out of the
machine (pods only have their default via their board's bridge). `close()`
stops the servers it started and deletes every namespace it made.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from agent.network import (
    Backend,
    BackendInfo,
    Ipam,
    Peer,
    ensure_backend,
    ensure_bridge,
    ensure_forwarding,
    ensure_peers,
    ensure_pod_interface,
)
from tests.conftest import require

LAN = IPv4Network("10.251.7.0/24")
BUSYBOX = "/bin/busybox"
HTTP_PORT = 8080


def require_netns_tools() -> None:
    """Skip (or fail in CI) unless this test can build namespaces and nftables."""
    require(os.geteuid() == 0, "network namespace tests need root")
    for tool in ("ip", "nft", "nsenter"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    require(os.access(BUSYBOX, os.X_OK), f"{BUSYBOX} (busybox-static) is not installed")


def run(*argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


@dataclass
class Board:
    name: str
    netns: str
    ip: IPv4Address
    pod_cidr: IPv4Network
    ipam: Ipam
    info: BackendInfo
    gateway: IPv4Interface
    bridge_netfilter: bool

    def peer(self) -> Peer:
        return Peer(self.name, self.ip, self.pod_cidr, self.info.vtep_mac)


@dataclass
class Pod:
    name: str
    netns: str
    board: Board
    address: IPv4Interface


@dataclass
class Lab:
    backend: Backend
    workdir: Path
    prefix: str = field(default_factory=lambda: "pknt" + secrets.token_hex(3))
    boards: list[Board] = field(default_factory=list)
    pods: dict[str, Pod] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    root_routes_before: set[str] = field(default_factory=lambda: root_routes())
    """The machine's routes when the lab was made, to show the lab added none."""

    @property
    def lan_netns(self) -> str:
        return f"{self.prefix}-lan"

    def _netns(self, name: str) -> str:
        netns = f"{self.prefix}-{name}"
        run("ip", "netns", "add", netns)
        self.namespaces.append(netns)
        run("ip", "-n", netns, "link", "set", "lo", "up")
        return netns

    def _lan_port(self, netns: str, ifname: str, address: IPv4Address) -> None:
        """Plug `netns` into the LAN bridge as `lan0` with `address`."""
        lan = self.lan_netns
        run("ip", "-n", lan, "link", "add", ifname, "type", "veth", "peer", "name", "lan0", "netns", netns)
        run("ip", "-n", self.lan_netns, "link", "set", ifname, "master", "lan", "up")
        run("ip", "-n", netns, "addr", "add", f"{address}/{LAN.prefixlen}", "dev", "lan0")
        run("ip", "-n", netns, "link", "set", "lan0", "up")

    def build(self, boards: int) -> Lab:
        """The LAN, `boards` boards with the network set up, and every board knowing its peers."""
        self._netns("lan")
        run("ip", "-n", self.lan_netns, "link", "add", "lan", "type", "bridge")
        run("ip", "-n", self.lan_netns, "link", "set", "lan", "up")
        for i in range(boards):
            self.add_board(i)
        self.sync_peers()
        return self

    def add_board(self, i: int) -> Board:
        name = f"b{i}"
        netns = self._netns(name)
        ip = LAN.network_address + 10 + i
        self._lan_port(netns, name, ip)
        pod_cidr = IPv4Network(f"10.244.{i + 1}.0/24")
        bridge_netfilter = ensure_forwarding(netns)
        info = ensure_backend(netns, self.backend, ip)
        gateway = ensure_bridge(netns, pod_cidr, info.mtu)
        ipam = Ipam(self.workdir / name / "ipam.json", pod_cidr)
        board = Board(name, netns, ip, pod_cidr, ipam, info, gateway, bridge_netfilter)
        self.boards.append(board)
        return board

    def peers(self) -> list[Peer]:
        return [board.peer() for board in self.boards]

    def sync_peers(self) -> None:
        for board in self.boards:
            ensure_peers(board.netns, self.backend, self.peers())

    def add_pod(self, board: Board, name: str, serve: bool = True) -> Pod:
        """A pod namespace plugged into `board`, answering HTTP with its own name if `serve`."""
        netns = self._netns(name)
        address = board.ipam.allocate(name)
        ensure_pod_interface(board.netns, netns, name, address, board.gateway.ip, board.info.mtu)
        pod = Pod(name, netns, board, address)
        self.pods[name] = pod
        if serve:
            self.serve(netns, name, address.ip)
        return pod

    def client(self, name: str = "client") -> str:
        """A namespace on the LAN (not a board) to reach NodePorts from outside; it serves HTTP too."""
        netns = self._netns(name)
        address = LAN.network_address + 200
        self._lan_port(netns, name, address)
        self.serve(netns, name, address)
        return netns

    def serve(self, netns: str, name: str, address: IPv4Address) -> None:
        """busybox httpd on port 8080 in `netns`, answering `name`; returns once it answers."""
        root = self.workdir / "www" / name
        root.mkdir(parents=True)
        (root / "index.html").write_text(name)
        httpd = [BUSYBOX, "httpd", "-f", "-p", str(HTTP_PORT), "-h", str(root)]
        argv = ["ip", "netns", "exec", netns, *httpd]
        quiet = subprocess.DEVNULL
        self.servers.append(subprocess.Popen(argv, stdout=quiet, stderr=quiet))
        deadline = time.monotonic() + 5
        while self.get(netns, f"http://{address}:{HTTP_PORT}/", timeout=1) != name:
            if time.monotonic() > deadline:
                raise RuntimeError(f"httpd in {name} did not start")
            time.sleep(0.05)

    def get(self, netns: str, url: str, timeout: float = 2) -> str | None:
        """The body of `url` fetched from inside `netns`, or None if the request failed."""
        proc = self.fetch(netns, url, timeout)
        return proc.stdout if proc is not None and proc.returncode == 0 else None

    def fetch(self, netns: str, url: str, timeout: float = 2) -> subprocess.CompletedProcess[str] | None:
        """busybox wget from inside `netns`; None if it hung past `timeout` (this wget has no -T)."""
        argv = ("ip", "netns", "exec", netns, BUSYBOX, "wget", "-q", "-O", "-", url)
        try:
            return run(*argv, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def ping(self, netns: str, address: IPv4Address | str) -> bool:
        argv = ("ip", "netns", "exec", netns, BUSYBOX, "ping", "-c", "1", "-W", "1", str(address))
        return run(*argv, check=False).returncode == 0

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait(timeout=5)
        for netns in reversed(self.namespaces):
            run("ip", "netns", "del", netns, check=False)
        self.namespaces.clear()


def ip(netns: str, *argv: str, check: bool = True) -> str:
    """`ip -n netns …` and its output."""
    return run("ip", "-n", netns, *argv, check=check).stdout


def root_routes() -> set[str]:
    """The root namespace's IPv4 routes, for before/after comparison."""
    return set(run("ip", "-4", "route", "show", "table", "all").stdout.splitlines())
