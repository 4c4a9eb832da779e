"""A real master, a private Docker engine and a real `pikube agent` process, shared by a test module.

Every pod a test makes lives in its own namespace-free name; whatever happens,
the agent's containers and volumes (labelled with its node name) are removed
when the fixture ends.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from pikube.dev.localagent import NODE_LABEL, AgentProcess, agent_argv, make_token, remove_node_containers
from pikube.dev.localmaster import RunningMaster, start_master
from pikube.dev.netlab import start_master_on
from tests.master.conftest import kubectl

# The launchers live in pikube.dev (benchmarks use them too); tests import them from here as before.
__all__ = ["NODE_LABEL", "AgentProcess", "Cluster", "ContainerRow", "agent_argv", "cluster", "condition",
           "container_status", "make_token", "phase", "remove_node_containers", "start_master_on",
           "wait_node_ready"]

Obj = dict[str, Any]


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
