"""Jobs: completions with parallelism, backoffLimit (Never and OnFailure), deadlines, TTL after finishing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pikube.sim.api import resource_path
from tests.master.controllers.conftest import Cluster, wait_for

pytestmark = pytest.mark.integration

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: %(name)s, namespace: %(ns)s}
spec:
  completions: %(completions)s
  parallelism: %(parallelism)s
  backoffLimit: %(backoff)s
  %(extra)s
  template:
    metadata:
      annotations: {sim.pikube.io/run-seconds: "%(run)s", sim.pikube.io/exit-code: "%(code)s"}
    spec:
      restartPolicy: %(policy)s
      containers: [{name: work, image: "busybox:1", command: [sh, -c, "exit %(code)s"]}]
"""


def job(c: Cluster, ns: str, name: str, completions: int = 1, parallelism: int = 1, backoff: int = 6,
        run: float = 0.3, code: int = 0, policy: str = "Never", extra: str = "") -> None:
    c.kubectl("apply", "-f", "-", input=JOB % {
        "name": name, "ns": ns, "completions": completions, "parallelism": parallelism, "backoff": backoff,
        "run": run, "code": code, "policy": policy, "extra": extra})


def status(c: Cluster, ns: str, name: str) -> dict[str, Any]:
    j = c.get("batch/v1", "jobs", ns, name) or {}
    result: dict[str, Any] = j.get("status") or {}
    return result


def condition(c: Cluster, ns: str, name: str, kind: str) -> dict[str, Any] | None:
    return next((x for x in status(c, ns, name).get("conditions") or [] if x["type"] == kind), None)


def test_completions_with_parallelism(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("job")
    most = [0]
    stop = threading.Event()

    def watch_running() -> None:
        pods: dict[str, dict[str, Any]] = {}
        for event in c.admin.watch(resource_path("v1", "pods", ns), {"timeoutSeconds": "60"}, stop):
            obj = event["object"]
            pods[obj["metadata"]["uid"]] = obj
            if event["type"] == "DELETED":
                pods.pop(obj["metadata"]["uid"])
            active = [p for p in pods.values() if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
            most[0] = max(most[0], len(active))

    t = threading.Thread(target=watch_running, daemon=True)
    t.start()
    job(c, ns, "batch", completions=3, parallelism=2, run=0.5)
    c.kubectl("wait", "--for=condition=complete", "job/batch", "-n", ns, "--timeout=60s")
    stop.set()
    s = status(c, ns, "batch")
    assert s["succeeded"] == 3 and not s.get("failed") and not s.get("active")
    assert s["completionTime"]
    assert most[0] == 2, f"parallelism 2, but {most[0]} pods ran at once"
    assert len(c.pods(ns)) == 3
    wait_for(lambda: "Job completed" in c.kubectl("get", "events", "-n", ns, "--field-selector",
                                                  "reason=Completed").stdout, what="the Completed event")


def test_always_failing_job_stops_at_backoff_limit(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("job-fail")
    job(c, ns, "doomed", backoff=2, code=1, run=0.2)
    c.kubectl("wait", "--for=condition=failed", "job/doomed", "-n", ns, "--timeout=60s")
    cond = condition(c, ns, "doomed", "Failed")
    assert cond is not None and cond["reason"] == "BackoffLimitExceeded"
    assert status(c, ns, "doomed")["failed"] == 3
    pods = c.pods(ns)
    assert len(pods) == 3 and all(p["status"]["phase"] == "Failed" for p in pods)


def test_on_failure_counts_restarts(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("job-restart")
    job(c, ns, "flaky", backoff=2, code=1, run=0.2, policy="OnFailure")
    c.kubectl("wait", "--for=condition=failed", "job/flaky", "-n", ns, "--timeout=60s")
    cond = condition(c, ns, "flaky", "Failed")
    assert cond is not None and cond["reason"] == "BackoffLimitExceeded"
    wait_for(lambda: not [p for p in c.pods(ns) if not p["metadata"].get("deletionTimestamp")],
             what="the restarting pod stopped")


def test_active_deadline_and_ttl(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("job-deadline")
    job(c, ns, "slow", run=600, extra="activeDeadlineSeconds: 2")
    c.kubectl("wait", "--for=condition=failed", "job/slow", "-n", ns, "--timeout=30s")
    cond = condition(c, ns, "slow", "Failed")
    assert cond is not None and cond["reason"] == "DeadlineExceeded"
    wait_for(lambda: not c.pods(ns), what="the deadline stopped the pod")

    job(c, ns, "brief", run=0.2, extra="ttlSecondsAfterFinished: 1")
    c.kubectl("wait", "--for=condition=complete", "job/brief", "-n", ns, "--timeout=30s")
    wait_for(lambda: c.get("batch/v1", "jobs", ns, "brief") is None, what="the finished job deleted after its TTL")
    wait_for(lambda: not c.pods(ns), what="its pods collected")
