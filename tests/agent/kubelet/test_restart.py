"""The agent's own lifecycle: kill -9 and restart adopts running pods; deletion honours the grace period."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import pytest

from tests.agent.kubelet.conftest import Cluster, condition, container_status, phase, wait_node_ready

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def _snapshot(cluster: Cluster) -> dict[str, tuple[str, str, str]]:
    return {c.id: (c.name, c.labels.get("io.kubernetes.container.restartCount", ""), c.status)
            for c in cluster.containers()}


def _gone(cluster: Cluster, pod: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not cluster.containers(pod) and cluster.pod(pod) is None:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"pod {pod} still has {[c.name for c in cluster.containers(pod)]} after {timeout}s "
                         f"(pod object: {cluster.pod(pod) is not None})\n{cluster.agent.log_tail()}")


def test_kill_9_and_restart_changes_no_container_and_cleans_up_deleted_pods(cluster: Cluster) -> None:
    bb = cluster.images.busybox
    cluster.create_pod({"metadata": {"name": "steady"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "a", "image": bb, "command": ["sleep", "3600"]},
        {"name": "b", "image": bb, "command": ["httpd", "-f", "-p", "8080", "-h", "/var/www"],
         "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}})
    cluster.create_pod({"metadata": {"name": "doomed"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "a", "image": bb, "command": ["sleep", "3600"]}]}})
    cluster.wait_pod("steady", lambda p: condition(p, "Ready") == "True", what="Ready")
    cluster.wait_pod("doomed", phase("Running"), what="Running")
    before = {cid: v for cid, v in _snapshot(cluster).items() if "_doomed_" not in v[0]}

    cluster.agent.stop(signal.SIGKILL)
    cluster.delete_pod("doomed", grace=0)  # deleted for good while the agent is down
    assert cluster.pod("doomed") is None
    cluster.agent.start()
    wait_node_ready(cluster)
    _gone(cluster, "doomed", 20)
    time.sleep(3)  # several syncs and probe rounds
    after = _snapshot(cluster)
    assert after == before, "an agent restart changed containers"
    pod = cluster.wait_pod("steady", lambda p: condition(p, "Ready") == "True", what="Ready again")
    assert [container_status(pod, n)["restartCount"] for n in ("a", "b")] == [0, 0]


def test_deleted_pods_containers_are_gone_within_the_grace_period(cluster: Cluster) -> None:
    bb = cluster.images.busybox
    cluster.create_pod({"metadata": {"name": "term-fast"}, "spec": {"terminationGracePeriodSeconds": 30, "containers": [
        {"name": "a", "image": bb, "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}})
    cluster.create_pod({"metadata": {"name": "term-slow"}, "spec": {"terminationGracePeriodSeconds": 3, "containers": [
        {"name": "a", "image": bb, "command": ["sleep", "3600"]}]}})  # PID 1 without a handler ignores SIGTERM
    cluster.wait_pod("term-fast", phase("Running"), what="Running")
    cluster.wait_pod("term-slow", phase("Running"), what="Running")
    cluster.delete_pod("term-fast")
    cluster.delete_pod("term-slow")
    fast = _gone(cluster, "term-fast", 30)
    slow = _gone(cluster, "term-slow", 10)
    assert fast < 10, f"a pod that exits on SIGTERM took {fast:.1f}s to go (grace period 30s)"
    assert 2.5 <= slow <= 3 + 5, f"a pod ignoring SIGTERM went after {slow:.1f}s, not at its 3s grace period"


def test_kubectl_logs_follow_tail_container_and_timestamps(cluster: Cluster) -> None:
    bb = cluster.images.busybox
    cluster.create_pod({"metadata": {"name": "talker"}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [
        {"name": "count", "image": bb,
         "command": ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.3; done"]},
        {"name": "quiet", "image": bb, "command": ["sh", "-c", "echo only-line; exec sleep 3600"]}]}})
    cluster.wait_pod("talker", phase("Running"), what="Running")
    time.sleep(1.5)
    tail = cluster.kubectl("logs", "talker", "-c", "count", "--tail", "2").stdout.splitlines()
    assert len(tail) == 2 and all(line.startswith("line ") for line in tail)
    assert int(tail[1].split()[1]) == int(tail[0].split()[1]) + 1
    assert cluster.kubectl("logs", "talker", "-c", "quiet").stdout == "only-line\n"
    stamped = cluster.kubectl("logs", "talker", "-c", "quiet", "--timestamps").stdout
    assert stamped.endswith(" only-line\n") and stamped[:4].isdigit() and "T" in stamped.split()[0]
    assert cluster.kubectl("logs", "talker", "-c", "quiet", "--since", "1h").stdout == "only-line\n"
    no_container = cluster.kubectl("logs", "talker", check=False)
    assert no_container.returncode != 0 or "Defaulted container" in no_container.stderr

    from tests.master.conftest import kubectl_path

    proc = subprocess.Popen([kubectl_path("new"), "--kubeconfig", str(cluster.master.kubeconfig), "logs", "-f",
                             "talker", "-c", "count"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        seen = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(seen) < 20:
            seen.append(proc.stdout.readline().strip())
        numbers = [int(s.split()[1]) for s in seen]
        assert numbers == list(range(numbers[0], numbers[0] + 20)), seen
        assert numbers[-1] > int(tail[1].split()[1]) + 5, "follow did not stream new lines"
    finally:
        proc.kill()
        proc.wait()
