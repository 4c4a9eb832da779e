"""The network lab: simulated boards, each running a real `pikube agent --pod-network bridge`, and one master.

The cluster network tests (`tests/network`) and the network benchmark
(`bench/network.py`) both need the same thing: boards on a fresh test LAN made by
`pikube.dev.boards`, a master in the root namespace on the LAN's host address,
an agent per board with a chosen backend, pods in a given Docker engine, and a
clean slate afterwards. This module brings that up and tears it down, so the
benchmark need not import the test suite; it also has the handful of helpers
(pods, services, commands in boards and pods, the boards' nftables rules) both
of them drive the lab with.

The root namespace gets no route to the pod or service ranges (checked when the
lab goes); boards have no route out of the machine, and their agents' upstream
DNS server is the `client` namespace's address (`resolv_conf`).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import requests

from core import wellknown
from pikube.dev import boards, naming
from pikube.dev.localagent import AgentProcess, make_token, remove_node_containers
from pikube.dev.localmaster import RunningMaster, free_port, master_argv, spawn_master

Obj = dict[str, Any]
T = TypeVar("T")

BOARDS = ("b1", "b2", "b3")
BACKENDS = ("host-gw", "vxlan")
HTTP_PORT = 8080
# A pod's httpd answers its own name (the hostname is the pod's name).
HTTPD = ["sh", "-c", f"hostname > /var/www/index.html; exec httpd -f -p {HTTP_PORT} -h /var/www"]
START_TIMEOUT = 30.0


class Images(Protocol):
    """The pod images the lab runs (the test suite's `DevImages` is one)."""

    @property
    def busybox(self) -> str: ...


def run(argv: list[str], timeout: float = 10, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`argv`'s output as text; with `check`, RuntimeError when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return proc


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1) -> T:
    """The first truthy answer of `check`, polled every `interval`; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout}s (last: {last!r})")


def start_master_on(address: str, data_dir: Path, *extra: str) -> RunningMaster:
    """A `pikube master` listening on `address` (say, the test LAN's host address) instead of loopback,
    with `extra` flags.

    Its `url` property still says loopback: talk to it at `https://{address}:{port}`.
    """
    port = free_port()
    argv = master_argv(data_dir, port, address, "--tls-san", address, *extra)
    return spawn_master(argv, data_dir, port, host=address, timeout=START_TIMEOUT,
                        log_path=data_dir.parent / "master.log")


@dataclass
class NetCluster:
    """A running lab: its LAN, master, agents (by board) and the Docker engine its pods run in."""

    backend: str
    lan: boards.Lan
    master: RunningMaster
    url: str
    session: requests.Session
    docker: Any
    images: Images
    workdir: Path
    token: str
    docker_host: str
    boards: tuple[str, ...] = BOARDS
    agents: dict[str, AgentProcess] = field(default_factory=dict)

    # -- boards and agents -----------------------------------------------------------------------

    def node(self, board: str) -> str:
        return f"{board}-{self.lan.run}"

    def netns(self, board: str) -> str:
        return str(self.lan.board(board).netns)

    def address(self, board: str) -> str:
        return str(self.lan.board(board).address)

    def in_board(self, board: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.netns(board), *argv], timeout=timeout)

    def agent_argv(self, board: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns(board), sys.executable, "-m", "pikube.cli", "agent",
                "--server", self.url, "--token", self.token, "--node-name", self.node(board),
                "--data-dir", str(self.data_dir(board)), "--docker-host", self.docker_host,
                "--pod-network", "bridge", "--backend", self.backend, "--log-level", "info",
                "--resolv-conf", str(self.resolv_conf())]

    def resolv_conf(self) -> Path:
        """The boards' resolv.conf: the `client` namespace's address is their only upstream DNS server (a test
        runs one there when it needs it), so no query ever leaves the machine."""
        path = self.workdir / "resolv.conf"
        if not path.exists():
            path.write_text(f"nameserver {self.address('client')}\n")
        return path

    def data_dir(self, board: str) -> Path:
        return self.workdir / f"agent-{board}"

    def start_agent(self, board: str) -> None:
        agent = AgentProcess(node=self.node(board), data_dir=self.data_dir(board),
                             log_path=self.workdir / f"agent-{board}.log", argv=self.agent_argv(board))
        self.agents[board] = agent
        agent.start()

    def synced_count(self, board: str) -> int:
        """How often this board's agent has logged its first complete network sync (once per start)."""
        return self.agents[board].log_path.read_text(errors="replace").count("network in sync:")

    def wait_agent_synced(self, board: str, starts: int = 1, timeout: float = 30.0) -> None:
        agent = self.agents[board]

        def synced() -> bool:
            if agent.proc is not None and agent.proc.poll() is not None:
                raise RuntimeError(f"agent on {board} exited:\n{agent.log_tail()}")
            return self.synced_count(board) >= starts

        try:
            wait_for(f"agent on {board} in sync", synced, timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{agent.log_tail()}") from exc

    def restart_agent(self, board: str, sig: int = signal.SIGTERM) -> None:
        before = self.synced_count(board)
        self.agents[board].stop(sig)
        self.agents[board].start()
        self.wait_agent_synced(board, before + 1)

    def peer_routes(self, board: str) -> list[str]:
        """The board's routes to the other boards' pod ranges (the agents' routing protocol, 112)."""
        return [line for line in self.in_board(board, "ip", "-4", "route", "show", "proto", "112").stdout.splitlines()
                if line.strip()]

    # -- the API ---------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Obj | None = None, ok: tuple[int, ...] = (200, 201),
            content_type: str = "application/json") -> Obj:
        """The JSON answer to one request; RuntimeError unless its status is one of `ok`."""
        resp = self.session.request(method, self.url + path, data=json.dumps(body) if body is not None else None,
                                    headers={"Content-Type": content_type}, timeout=15)
        if resp.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text}")
        return dict(resp.json()) if resp.content else {}

    def get(self, path: str) -> Obj | None:
        resp = self.session.get(self.url + path, timeout=15)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return dict(resp.json())

    def create_pod(self, name: str, board: str | None, labels: dict[str, str] | None = None,
                   command: list[str] | None = None, ports: list[Obj] | None = None, ready_port: int | None = None,
                   ) -> Obj:
        """A busybox pod on `board` (None: the scheduler picks); without `command`, an httpd ready on HTTP_PORT."""
        container: Obj = {"name": "main", "image": self.images.busybox, "command": command or HTTPD}
        if ports:
            container["ports"] = ports
        probe_port = ready_port if ready_port is not None else (HTTP_PORT if command is None else None)
        if probe_port:
            container["readinessProbe"] = {"tcpSocket": {"port": probe_port}, "periodSeconds": 1}
        spec: Obj = {"terminationGracePeriodSeconds": 1, "containers": [container]}
        if board:
            spec["nodeName"] = self.node(board)
        return self.api("POST", "/api/v1/namespaces/default/pods",
                        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
                         "spec": spec})

    def pod(self, name: str) -> Obj | None:
        return self.get(f"/api/v1/namespaces/default/pods/{name}")

    def wait_ready(self, *names: str, timeout: float = 60.0) -> dict[str, Obj]:
        found: dict[str, Obj] = {}

        def ready() -> bool:
            for name in names:
                pod = self.pod(name)
                conds = {c.get("type"): c.get("status") for c in ((pod or {}).get("status") or {}).get("conditions")
                         or []}
                if pod is None or conds.get("Ready") != "True":
                    return False
                found[name] = pod
            return True

        try:
            wait_for(f"pods {names} Ready", ready, timeout, 0.2)
        except TimeoutError as exc:
            logs = "\n".join(f"--- {b}\n{a.log_tail()[-1500:]}" for b, a in self.agents.items())
            raise TimeoutError(f"{exc}\n{logs}") from exc
        return found

    def delete_pod(self, name: str, wait: bool = True) -> None:
        self.api("DELETE", f"/api/v1/namespaces/default/pods/{name}", ok=(200, 202, 404))
        if wait:
            wait_for(f"pod {name} gone", lambda: self.pod(name) is None, 30, 0.2)

    def pod_ip(self, name: str) -> str:
        pod = self.pod(name)
        if pod is None:
            raise LookupError(f"no pod {name}")
        return str(pod["status"]["podIP"])

    def service(self, name: str, selector: dict[str, str], port: int, target: int, kind: str = "ClusterIP",
                affinity: bool = False) -> Obj:
        spec: Obj = {"type": kind, "selector": selector,
                     "ports": [{"name": "main", "port": port, "targetPort": target, "protocol": "TCP"}]}
        if affinity:
            spec["sessionAffinity"] = "ClientIP"
        return self.api("POST", "/api/v1/namespaces/default/services",
                        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})

    def endpoint_ips(self, name: str) -> set[str]:
        ep = self.get(f"/api/v1/namespaces/default/endpoints/{name}") or {}
        return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}

    # -- inside pods -----------------------------------------------------------------------------

    def _container(self, pod: str, kind: str) -> str:
        wanted = [f"io.kubernetes.pod.name={pod}", f"{wellknown.KIND_LABEL}={kind}"]
        rows = self.docker.api.containers(filters={"label": wanted})
        rows = [r for r in rows if str((r.get("Labels") or {}).get(wellknown.NODE_LABEL, "")).endswith(self.lan.run)]
        if not rows:
            raise LookupError(f"no running {kind} container of pod {pod}")
        return str(rows[0]["Id"])

    def sandbox_pid(self, pod: str) -> int:
        return int(self.docker.api.inspect_container(self._container(pod, "sandbox"))["State"]["Pid"])

    def pod_netns(self, pod: str) -> str:
        return f"/proc/{self.sandbox_pid(pod)}/ns/net"

    def exec(self, pod: str, script: str, timeout: float = 30) -> str:
        """Run `sh -c script` in the pod's app container (busybox from the image)."""
        proc = run(["docker", "-H", self.docker_host, "exec", self._container(pod, "app"), "sh", "-c", script],
                   timeout=timeout)
        return proc.stdout + proc.stderr

    def fetch_from_pod(self, pod: str, urls: list[str], each: int = 1, seconds: int = 3) -> list[str]:
        """Answers (one line each, "FAILED" for a failure) of `wget` from inside `pod`, `each` times per URL."""
        loop = " ".join(urls)
        script = (f"for u in {loop}; do for i in $(seq {each}); do "
                  f"timeout {seconds} wget -q -O - $u 2>/dev/null || echo FAILED; done; done")
        out = self.exec(pod, script, timeout=seconds * each * len(urls) + 20)
        return [line.strip() for line in out.splitlines() if line.strip()]

    def fetch_from_board(self, board: str, url: str, seconds: float = 3) -> str:
        try:
            return self.in_board(board, "/bin/busybox", "wget", "-q", "-O", "-", url, timeout=seconds).stdout.strip()
        except subprocess.TimeoutExpired:
            return ""

    # -- the kernel of a board -------------------------------------------------------------------

    def nft_chain(self, board: str, chain: str) -> str:
        return self.in_board(board, "nft", "list", "chain", "ip", "pikube", chain).stdout

    def rule_endpoints(self, board: str, service: str, port: int) -> set[str]:
        """Pod addresses the board's proxy DNATs `service`:`port` to now."""
        chain = self.nft_chain(board, f"svc-default-{service}-tcp-{port}")
        # "10.244.1.5 . 8080" in a DNAT map, or "ep-…-10.244.1.5-8080" chains with ClientIP affinity
        return set(re.findall(r"(10\.244\.\d+\.\d+)(?: \. |-)\d+", chain))

    def wait_rules(self, service: str, port: int, timeout: float = 15) -> set[str]:
        """Wait until every board DNATs `service` to exactly its ready endpoints; returns them."""
        def agreed() -> set[str] | None:
            ips = self.endpoint_ips(service)
            ok = ips and all(self.rule_endpoints(b, service, port) == ips for b in self.boards)
            return ips if ok else None

        return wait_for(f"rules of {service} on every board", agreed, timeout, 0.05)


def root_routes() -> str:
    return run(["ip", "-4", "route", "show", "table", "all"]).stdout


def check_root_untouched() -> None:
    """RuntimeError if the machine's own namespace has a route to the pod or service range."""
    for line in root_routes().splitlines():
        if re.match(r"^(10\.244\.|10\.9[6-9]\.|10\.1[01][0-9]\.)", line):
            raise RuntimeError(f"root namespace route: {line}")


@contextlib.contextmanager
def cluster_up(backend: str, workdir: Path, docker_host: str, docker: Any, images: Images,
               board_names: tuple[str, ...] = BOARDS,
               on_run: Callable[[naming.RunId], None] | None = None,
               master_flags: Callable[[boards.Lan], list[str]] | None = None) -> Iterator[NetCluster]:
    """A LAN with `board_names` and `client`, a master on the LAN's host address, an agent per board, all in
    sync; on the way out (pass or fail) agents, their containers, the master and the LAN are removed.

    `on_run` hears the run id before anything is made (the test suite records it to look for leftovers);
    `master_flags` gives extra `pikube master` flags, from the LAN it will serve.
    """
    run_id = naming.new_run_id()
    if on_run is not None:
        on_run(run_id)
    lan = boards.create([*board_names, "client"], run=run_id)
    master: RunningMaster | None = None
    c: NetCluster | None = None
    try:
        master = start_master_on(str(lan.host_address), workdir / "master",
                                 *(master_flags(lan) if master_flags is not None else []))
        c = NetCluster(backend=backend, lan=lan, master=master, url=f"https://{lan.host_address}:{master.port}",
                       session=master.session(), docker=docker, images=images, workdir=workdir,
                       token=make_token(master, "pikube.dev.netlab"), docker_host=docker_host, boards=board_names)
        for board in board_names:
            c.start_agent(board)
        for board in board_names:
            c.wait_agent_synced(board)
        cluster = c
        others = len(board_names) - 1
        wait_for("every board routes to the others",
                 lambda: all(len(cluster.peer_routes(b)) == others for b in board_names), 30)
        yield c
    finally:
        if c is not None:
            for agent in c.agents.values():
                agent.stop(signal.SIGKILL)
            for board in board_names:
                remove_node_containers(docker, c.node(board))
        if master is not None:
            master.stop()
        boards.teardown(run_id)
        left = boards.leftovers(run_id)
        if left:
            raise RuntimeError(f"the network lab left behind: {left}")
        check_root_untouched()
