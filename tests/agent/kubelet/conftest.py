"""A real master, a private Docker engine and a real `pikube agent` process, shared by a test module.

Every pod a test makes lives in its own namespace-free name; whatever happens,
the agent's containers and volumes (labelled with its node name) are removed
when the fixture ends.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.master.conftest import ROOT, RunningMaster, free_port, kubectl, start_master

Obj = dict[str, Any]
NODE_LABEL = "pikube.io/node"


@dataclass
class AgentProcess:
    node: str
    data_dir: Path
    log_path: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass(frozen=True)
class ContainerRow:
    id: str
    name: str
    labels: dict[str, str]
    status: str


@dataclass
class Cluster:
    master: RunningMaster
    agent: AgentProcess
    docker: Any
    images: Any
    session: requests.Session
    namespace: str = "default"
    made: list[str] = field(default_factory=list)

    @property
    def node(self) -> str:
        return self.agent.node

    def url(self, path: str) -> str:
        return self.master.url + path

    def create_pod(self, manifest: Obj) -> Obj:
        manifest.setdefault("apiVersion", "v1")
        manifest.setdefault("kind", "Pod")
        manifest.setdefault("spec", {})["nodeName"] = self.node
        ns = manifest.setdefault("metadata", {}).setdefault("namespace", self.namespace)
        resp = self.session.post(self.url(f"/api/v1/namespaces/{ns}/pods"), json=manifest)
        assert resp.status_code == 201, resp.text
        self.made.append(manifest["metadata"]["name"])
        return dict(resp.json())

    def create(self, path: str, obj: Obj) -> Obj:
        resp = self.session.post(self.url(path), json=obj)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def pod(self, name: str, ns: str | None = None) -> Obj | None:
        resp = self.session.get(self.url(f"/api/v1/namespaces/{ns or self.namespace}/pods/{name}"))
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return dict(resp.json())

    def delete_pod(self, name: str, grace: int | None = None) -> None:
        params = {"gracePeriodSeconds": str(grace)} if grace is not None else {}
        self.session.delete(self.url(f"/api/v1/namespaces/{self.namespace}/pods/{name}"), params=params)

    def wait_pod(self, name: str, check: Callable[[Obj], bool], timeout: float = 30.0, what: str = "") -> Obj:
        deadline = time.monotonic() + timeout
        pod: Obj | None = None
        while time.monotonic() < deadline:
            pod = self.pod(name)
            if pod is not None and check(pod):
                return pod
            time.sleep(0.2)
        raise AssertionError(f"pod {name}: {what or 'condition'} not reached in {timeout}s; last status:\n"
                             f"{json.dumps((pod or {}).get('status'), indent=1)}\nagent log:\n{self.agent.log_tail()}")

    def containers(self, pod_name: str | None = None, all: bool = True) -> list[ContainerRow]:
        """This node's containers from one `docker ps` (no per-container inspect that could race a removal)."""
        labels = [f"{NODE_LABEL}={self.node}"]
        if pod_name:
            labels.append(f"io.kubernetes.pod.name={pod_name}")
        rows = self.docker.api.containers(all=all, filters={"label": labels})
        return [ContainerRow(id=r["Id"], name=(r.get("Names") or ["/"])[0].lstrip("/"),
                             labels=dict(r.get("Labels") or {}), status=str(r.get("State", ""))) for r in rows]

    def container(self, pod_name: str, name: str) -> Any:
        found = [c for c in self.containers(pod_name, all=False)
                 if c.labels.get("io.kubernetes.container.name") == name]
        assert found, f"no running container {name} in pod {pod_name}"
        return self.docker.containers.get(found[0].id)

    def exec(self, pod_name: str, name: str, *argv: str) -> str:
        result = self.container(pod_name, name).exec_run(list(argv))
        return result.output.decode(errors="replace")

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return kubectl(self.master, "new", *args, check=check)


def phase(want: str) -> Callable[[Obj], bool]:
    return lambda pod: (pod.get("status") or {}).get("phase") == want


def container_status(pod: Obj, name: str, init: bool = False) -> Obj:
    key = "initContainerStatuses" if init else "containerStatuses"
    for cs in (pod.get("status") or {}).get(key) or []:
        if cs.get("name") == name:
            return dict(cs)
    return {}


def condition(pod: Obj, kind: str) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return str(c.get("status"))
    return ""


def make_token(master: RunningMaster) -> str:
    from master.pki import pki_paths
    from master.tokens import TokenStore

    return TokenStore.for_pki(master.data_dir, pki_paths(master.data_dir)).create(3600, "tests")


def agent_argv(master: RunningMaster, node: str, data_dir: Path, docker_host: str, token: str,
               extra: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "pikube.cli", "agent", "--server", master.url, "--token", token,
            "--node-name", node, "--data-dir", str(data_dir), "--docker-host", docker_host,
            "--node-ip", "127.0.0.1", "--log-bind", "127.0.0.1", "--log-port", str(free_port()),
            "--log-level", "info", *(extra or [])]


def start_master_on(address: str, data_dir: Path) -> RunningMaster:
    """A `pikube master` listening on `address` (say, the test LAN's host address) instead of loopback."""
    port = free_port()
    log_path = data_dir.parent / "master.log"
    data_dir.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "pikube.cli", "master", "--data-dir", str(data_dir),
                             "--bind", address, "--port", str(port), "--tls-san", address, "--web-port", "0"],
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT)
    m = RunningMaster(data_dir, port, proc, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"master exited: {log_path.read_text()[-3000:]}")
        try:
            if m.kubeconfig.exists() and requests.get(f"https://{address}:{port}/healthz", verify=str(m.ca),
                                                      timeout=1).ok:
                return m
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    m.stop(9)
    raise RuntimeError(log_path.read_text()[-3000:])


def wait_node_ready(c: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.agent.proc is not None and c.agent.proc.poll() is not None:
            raise AssertionError(f"agent exited:\n{c.agent.log_tail()}")
        resp = c.session.get(c.url(f"/api/v1/nodes/{c.node}"))
        if resp.ok and condition(resp.json(), "Ready") == "True":
            return
        time.sleep(0.2)
    raise AssertionError(f"node {c.node} not Ready in {timeout}s:\n{c.agent.log_tail()}")


def remove_node_containers(docker: Any, node: str) -> None:
    """Remove every container and volume labelled with `node` (after a test, pass or fail)."""
    for row in docker.api.containers(all=True, filters={"label": [f"{NODE_LABEL}={node}"]}):
        with contextlib.suppress(Exception):
            docker.api.remove_container(row["Id"], force=True, v=True)
    for vol in (docker.api.volumes(filters={"label": [f"{NODE_LABEL}={node}"]}) or {}).get("Volumes") or []:
        with contextlib.suppress(Exception):
            docker.api.remove_volume(vol["Name"], force=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
            dev_images: Any) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("agent")
    master = start_master(root / "master")
    node = f"node-{secrets.token_hex(3)}"
    agent = AgentProcess(node=node, data_dir=root / "agent", log_path=root / "agent.log",
                         argv=agent_argv(master, node, root / "agent", docker_engine.host, make_token(master)))
    c = Cluster(master=master, agent=agent, docker=docker_client, images=dev_images, session=master.session())
    try:
        agent.start()
        wait_node_ready(c)
        yield c
    finally:
        agent.stop()
        remove_node_containers(docker_client, node)
        master.stop()
