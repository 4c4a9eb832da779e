"""Docker going away under a running agent: the Node turns NotReady, its pods leave their Services, and both
come back with Docker.

The agent runs against `DockerProxy` (a socket in front of the session's
engine), so the test can take Docker away and give it back without touching the
engine the other tests use; its containers keep running meanwhile.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.agent.kubelet.conftest import (
    AgentProcess,
    Cluster,
    agent_argv,
    condition,
    make_token,
    remove_node_containers,
)
from tests.agent.kubelet.dockerproxy import DockerProxy, short_socket_dir

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
# From Docker going away to the pods' addresses leaving their Services (the issue's target).
WITHIN_SECONDS = 10.0


@dataclass
class ProxiedAgent:
    cluster: Cluster
    agent: AgentProcess
    proxy: DockerProxy

    @property
    def node(self) -> str:
        return self.agent.node

    def get(self, path: str) -> Obj:
        resp = self.cluster.session.get(self.cluster.url(path))
        resp.raise_for_status()
        return dict(resp.json())

    def wait(self, what: str, check: Callable[[], bool], timeout: float) -> float:
        """Poll `check` until it holds; the seconds it took (AssertionError with the agent's log after `timeout`)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.agent.proc is not None and self.agent.proc.poll() is not None:
                raise AssertionError(f"agent exited:\n{self.agent.log_tail()}")
            if check():
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout}s\nagent log:\n{self.agent.log_tail()}")


@pytest.fixture
def proxied(cluster: Cluster, docker_engine: Any, tmp_path: Any) -> Iterator[ProxiedAgent]:
    sockets = short_socket_dir()
    proxy = DockerProxy(sockets / "docker.sock", docker_engine.host)
    proxy.up()
    node = f"rt-{secrets.token_hex(3)}"
    agent = AgentProcess(node=node, data_dir=tmp_path / "agent", log_path=tmp_path / "agent.log",
                         argv=agent_argv(cluster.master, node, tmp_path / "agent", proxy.url,
                                         make_token(cluster.master)))
    p = ProxiedAgent(cluster, agent, proxy)
    try:
        agent.start()
        p.wait(f"node {node} Ready", lambda: _node_ready(p) == "True", 30)
        yield p
    finally:
        agent.stop()
        proxy.close()
        shutil.rmtree(sockets, ignore_errors=True)
        remove_node_containers(cluster.docker, node)
        cluster.session.delete(cluster.url(f"/api/v1/nodes/{node}"))


def _node_ready(p: ProxiedAgent) -> str:
    resp = p.cluster.session.get(p.cluster.url(f"/api/v1/nodes/{p.node}"))
    return condition(resp.json(), "Ready") if resp.ok else ""


def _addresses(p: ProxiedAgent, service: str) -> tuple[list[str], list[str]]:
    resp = p.cluster.session.get(p.cluster.url(f"/api/v1/namespaces/default/endpoints/{service}"))
    if resp.status_code == 404:
        return [], []
    subsets = resp.json().get("subsets") or []
    ready = [a["ip"] for s in subsets for a in s.get("addresses") or []]
    not_ready = [a["ip"] for s in subsets for a in s.get("notReadyAddresses") or []]
    return ready, not_ready


@pytest.mark.parametrize("how", ["stopped", "hung"])
def test_docker_down_makes_the_node_and_its_pods_not_ready_until_it_is_back(proxied: ProxiedAgent,
                                                                             how: str) -> None:
    p, c = proxied, proxied.cluster
    app = f"rt-{secrets.token_hex(3)}"
    # In the host's network, the pod's address is the node's: an Endpoints address without a pod network.
    resp = c.session.post(c.url("/api/v1/namespaces/default/pods"), json={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": app, "labels": {"app": app}},
        "spec": {"nodeName": p.node, "hostNetwork": True, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": c.images.busybox, "command": ["sleep", "3600"]}]}})
    assert resp.status_code == 201, resp.text
    c.create("/api/v1/namespaces/default/services", {
        "metadata": {"name": app}, "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}})
    pod_path = f"/api/v1/namespaces/default/pods/{app}"
    try:
        p.wait("the pod's address ready in its Service", lambda: _addresses(p, app) == (["127.0.0.1"], []), 30)
        before = p.get(pod_path)["status"]["containerStatuses"][0]
        lines_before = len(p.agent.log_path.read_text().splitlines())

        p.proxy.down() if how == "stopped" else p.proxy.hang()
        gone = time.monotonic()
        p.wait("the pod's address out of its Service", lambda: _addresses(p, app) == ([], ["127.0.0.1"]),
               WITHIN_SECONDS)
        # The node's condition is a write of its own (pods and node are reported apart): wait for it too.
        p.wait("the node NotReady", lambda: _node_ready(p) == "False",
               max(0.1, WITHIN_SECONDS - (time.monotonic() - gone)))
        assert time.monotonic() - gone < WITHIN_SECONDS
        node = p.get(f"/api/v1/nodes/{p.node}")
        ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
        assert ready["status"] == "False" and ready["reason"] == "KubeletNotReady", ready
        assert ready["message"].startswith("container runtime is down"), ready
        pod = p.get(pod_path)
        assert condition(pod, "Ready") == "False" and condition(pod, "ContainersReady") == "False"
        assert pod["status"]["containerStatuses"][0]["ready"] is False
        assert pod["status"]["phase"] == "Running"  # nothing is known to have stopped

        p.proxy.up()
        back = p.wait("the node Ready again", lambda: _node_ready(p) == "True", WITHIN_SECONDS)
        p.wait("the pod's address ready again", lambda: _addresses(p, app) == (["127.0.0.1"], []),
               WITHIN_SECONDS - back)
        after = p.get(pod_path)["status"]["containerStatuses"][0]
        assert after["containerID"] == before["containerID"] and after["restartCount"] == 0, after
        log = p.agent.log_path.read_text()
        assert "Traceback" not in log, log[-4000:]
        # One line for the runtime going down, one for it coming back, a few for the events stream.
        outage = log.splitlines()[lines_before:]
        assert len(outage) <= 8, "\n".join(outage)
    finally:
        p.proxy.up()
        c.session.delete(c.url(f"/api/v1/namespaces/default/services/{app}"))
        c.session.delete(c.url(pod_path), params={"gracePeriodSeconds": "0"})
