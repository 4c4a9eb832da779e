"""Workloads through the whole cluster (scheduler, job controller, agent), and agents sharing one engine."""

from __future__ import annotations

import secrets
import time

import pytest

from tests.agent.kubelet.conftest import (
    AgentProcess,
    Cluster,
    agent_argv,
    make_token,
    phase,
    remove_node_containers,
    wait_node_ready,
)

pytestmark = pytest.mark.integration


def test_kubectl_logs_of_a_job(cluster: Cluster) -> None:
    cluster.kubectl("create", "job", "hello", f"--image={cluster.images.busybox}", "--", "sh", "-c",
                    "echo hello from the job")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = cluster.kubectl("get", "job", "hello", "-o", "jsonpath={.status.succeeded}", check=False).stdout
        if job.strip() == "1":
            break
        time.sleep(0.5)
    else:
        pods = cluster.kubectl("get", "pods", "-o", "wide", check=False).stdout
        raise AssertionError(f"the job did not succeed:\n{pods}\n{cluster.agent.log_tail()}")
    assert cluster.kubectl("logs", "job/hello").stdout == "hello from the job\n"
    shown = cluster.kubectl("get", "pods", "-l", "job-name=hello").stdout
    assert "Completed" in shown


def test_image_pull_policy_always_falls_back_to_the_present_image(cluster: Cluster) -> None:
    cluster.create_pod({"metadata": {"name": "always"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "main", "image": cluster.images.busybox, "imagePullPolicy": "Always",
         "command": ["sleep", "3600"]}]}})
    cluster.wait_pod("always", phase("Running"), what="Running")
    events = cluster.session.get(cluster.url("/api/v1/namespaces/default/events")).json()["items"]
    mine = [e for e in events if e["involvedObject"]["name"] == "always"]
    assert any(e["reason"] == "Failed" and "using the image already present" in e["message"] for e in mine), mine


def test_agents_sharing_an_engine_touch_only_their_own_containers(cluster: Cluster, tmp_path: object,
                                                                   docker_engine: object) -> None:
    cluster.create_pod({"metadata": {"name": "mine"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "a", "image": cluster.images.busybox, "command": ["sleep", "3600"]}]}})
    cluster.wait_pod("mine", phase("Running"), what="Running")
    before = {c.id for c in cluster.containers("mine")}
    other_node = f"other-{secrets.token_hex(3)}"
    data = cluster.agent.data_dir.parent / other_node
    other = AgentProcess(node=other_node, data_dir=data, log_path=data.parent / f"{other_node}.log",
                         argv=agent_argv(cluster.master, other_node, data, docker_engine.host,  # type: ignore[attr-defined]
                                         make_token(cluster.master)))
    other_cluster = Cluster(master=cluster.master, agent=other, docker=cluster.docker, images=cluster.images,
                            session=cluster.session)
    try:
        other.start()
        wait_node_ready(other_cluster)
        other_cluster.create_pod({"metadata": {"name": "theirs"}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "a", "image": cluster.images.busybox, "command": ["sleep", "3600"]}]}})
        other_cluster.wait_pod("theirs", phase("Running"), what="Running")
        time.sleep(2)
        assert {c.id for c in cluster.containers("mine", all=False)} == before
        assert not cluster.containers("theirs"), "the first agent sees the second agent's pod as its own"
        assert other_cluster.containers("theirs", all=False)
    finally:
        other.stop()
        remove_node_containers(cluster.docker, other_node)
