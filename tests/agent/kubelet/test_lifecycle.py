"""Restarts, back-off, probes, OOM kills, image pulls and deletion, against a real agent and Docker.

The slow pods are all created at once by the module fixture so their waits
overlap; each test then watches its own pod.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest

from tests.agent.kubelet.conftest import Cluster, condition, container_status, phase

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def _pod(name: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 1, **spec,
                                                 "containers": containers}}


@pytest.fixture(scope="module")
def pods(cluster: Cluster) -> Cluster:
    bb = cluster.images.busybox
    counter = "n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; echo run $n"
    cluster.create_pod(_pod("crasher", [{
        "name": "main", "image": bb, "command": ["sh", "-c", f"{counter}; exit 3"],
        "volumeMounts": [{"name": "d", "mountPath": "/d"}]}], volumes=[{"name": "d", "emptyDir": {}}]))
    cluster.create_pod(_pod("live-exec", [{
        "name": "main", "image": bb, "command": ["sh", "-c", "touch /tmp/ok; sleep 2; rm /tmp/ok; exec sleep 3600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "periodSeconds": 1, "failureThreshold": 2}}]))
    cluster.create_pod(_pod("live-http", [{
        "name": "web", "image": bb,
        "command": ["sh", "-c", "mkdir -p /www; echo ok > /www/healthz; (sleep 3; rm /www/healthz) & "
                                "exec httpd -f -p 8080 -h /www"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                          "failureThreshold": 2}}]))
    cluster.create_pod(_pod("readiness", [
        {"name": "ready", "image": bb, "command": ["httpd", "-f", "-p", "8080", "-h", "/var/www"],
         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}},
        {"name": "unready", "image": bb, "command": ["sleep", "3600"],
         "readinessProbe": {"httpGet": {"path": "/", "port": 8081}, "periodSeconds": 1}},
    ]))
    cluster.create_pod(_pod("slow-start", [{
        "name": "main", "image": bb, "command": ["sh", "-c", "sleep 2; touch /tmp/started; exec sleep 3600"],
        "startupProbe": {"exec": {"command": ["test", "-f", "/tmp/started"]}, "periodSeconds": 1,
                         "failureThreshold": 10},
        "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/started"]}, "periodSeconds": 1,
                          "failureThreshold": 1}}]))
    cluster.create_pod(_pod("badcmd", [{"name": "main", "image": bb, "command": ["/no/such/binary"]}]))
    cluster.create_pod(_pod("oom", [{
        "name": "hog", "image": bb, "command": ["sh", "-c", "tail /dev/zero"],
        "resources": {"limits": {"memory": "24Mi"}}}], restartPolicy="Never"))
    cluster.create_pod(_pod("noimage", [{"name": "main", "image": "pikube/no-such-image:1.0",
                                         "imagePullPolicy": "IfNotPresent"}]))
    cluster.create_pod(_pod("job-ok", [{"name": "main", "image": bb, "command": ["sh", "-c", "echo done"]}],
                            restartPolicy="Never"))
    cluster.create_pod(_pod("job-fail", [{"name": "main", "image": bb, "command": ["sh", "-c", "exit 7"]}],
                            restartPolicy="OnFailure"))
    return cluster


def _time(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def _cs(pod: Obj, name: str = "main") -> Obj:
    return container_status(pod, name)


def test_crashing_container_shows_crashloopbackoff_with_growing_backoff(pods: Cluster) -> None:
    pod = pods.wait_pod("crasher", lambda p: "back-off 10s" in str(_cs(p).get("state")), what="back-off 10s")
    cs = _cs(pod)
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["restartCount"] == 1
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready") == "False"
    first_finished = _time(cs["lastState"]["terminated"]["finishedAt"])
    pod = pods.wait_pod("crasher", lambda p: "back-off 20s" in str(_cs(p).get("state")), timeout=25,
                        what="back-off 20s")
    cs = _cs(pod)
    waited = _time(cs["lastState"]["terminated"]["startedAt"]) - first_finished
    assert 9 <= waited <= 16, f"the restart after the first back-off came {waited}s after the crash, not 10s"
    assert cs["restartCount"] == 2
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    # logs: the newest instance and, with --previous, the one before it
    assert pods.kubectl("logs", "crasher").stdout.strip() == "run 3"
    assert pods.kubectl("logs", "crasher", "--previous").stdout.strip() == "run 2"


def test_a_command_that_cannot_run_crashloops_with_the_reason(pods: Cluster) -> None:
    pod = pods.wait_pod("badcmd", lambda p: _cs(p).get("state", {}).get("waiting", {}).get("reason")
                        == "CrashLoopBackOff", what="CrashLoopBackOff")
    last = _cs(pod)["lastState"]["terminated"]
    assert last["reason"] == "ContainerCannotRun" and "/no/such/binary" in last["message"], last
    assert pod["status"]["phase"] == "Running"


def test_failing_exec_liveness_probe_restarts_the_container(pods: Cluster) -> None:
    pod = pods.wait_pod("live-exec", lambda p: _cs(p).get("restartCount", 0) >= 1, what="a restart")
    cs = _cs(pod)
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    events = pods.session.get(pods.url("/api/v1/namespaces/default/events")).json()["items"]
    reasons = {(e["reason"], e["involvedObject"]["name"]) for e in events}
    assert ("Unhealthy", "live-exec") in reasons and ("Killing", "live-exec") in reasons


def test_failing_http_liveness_probe_restarts_the_container(pods: Cluster) -> None:
    pod = pods.wait_pod("live-http", lambda p: _cs(p, "web").get("restartCount", 0) >= 1, what="a restart")
    assert "running" in _cs(pod, "web")["state"] or "terminated" in _cs(pod, "web")["lastState"]


def test_startup_probe_holds_back_liveness_until_it_succeeds(pods: Cluster) -> None:
    pod = pods.wait_pod("slow-start", lambda p: _cs(p).get("started") is True, what="started")
    assert condition(pod, "Ready") == "True"
    time.sleep(1.5)
    cs = _cs(pods.pod("slow-start") or {})
    assert cs["restartCount"] == 0 and cs["ready"] is True, cs


def test_failing_readiness_probe_keeps_the_pod_out_of_ready(pods: Cluster) -> None:
    pod = pods.wait_pod("readiness", lambda p: _cs(p, "ready").get("ready") is True, what="ready container")
    time.sleep(2)
    pod = pods.pod("readiness") or {}
    assert pod["status"]["phase"] == "Running"
    assert _cs(pod, "ready")["ready"] is True
    assert _cs(pod, "unready")["ready"] is False and "running" in _cs(pod, "unready")["state"]
    assert condition(pod, "ContainersReady") == "False"
    assert condition(pod, "Ready") == "False"
    assert _cs(pod, "unready")["restartCount"] == 0


def test_memory_hog_is_oomkilled(pods: Cluster) -> None:
    # Docker's OOM notice may trail the container's exit by a moment; the status follows it (agent/runtime/docker.py).
    pod = pods.wait_pod("oom", lambda p: phase("Failed")(p) and (_cs(p, "hog").get("state", {}).get(
        "terminated") or {}).get("reason") == "OOMKilled", what="Failed, OOMKilled")
    term = _cs(pod, "hog")["state"]["terminated"]
    assert term["reason"] == "OOMKilled"
    assert term["exitCode"] == 137


def test_missing_image_gives_imagepullbackoff_naming_it(pods: Cluster) -> None:
    pod = pods.wait_pod("noimage", lambda p: _cs(p).get("state", {}).get("waiting", {}).get("reason")
                        in ("ErrImagePull", "ImagePullBackOff"), what="ErrImagePull")
    pod = pods.wait_pod("noimage", lambda p: _cs(p).get("state", {}).get("waiting", {}).get("reason")
                        == "ImagePullBackOff", what="ImagePullBackOff")
    waiting = _cs(pod)["state"]["waiting"]
    assert "pikube/no-such-image:1.0" in waiting["message"]
    assert pod["status"]["phase"] == "Pending"
    described = pods.kubectl("describe", "pod", "noimage").stdout
    assert "pikube/no-such-image:1.0" in described


def test_pods_that_finish_end_succeeded_or_keep_restarting(pods: Cluster) -> None:
    pod = pods.wait_pod("job-ok", phase("Succeeded"), what="Succeeded")
    term = _cs(pod)["state"]["terminated"]
    assert term["reason"] == "Completed" and term["exitCode"] == 0
    assert condition(pod, "Ready") == "False"
    assert pods.kubectl("logs", "job-ok").stdout == "done\n"
    pod = pods.wait_pod("job-fail", lambda p: _cs(p).get("restartCount", 0) >= 1, what="a restart")
    assert pod["status"]["phase"] == "Running"
    assert re.match(r"back-off \d+s", str(_cs(pod)["state"].get("waiting", {}).get("message", "back-off 0s")))
