"""A board that stops heartbeating: NotReady, tainted, and its pods running on other boards.

One test runs with short timings; one with the defaults (grace 40 s, toleration 30 s,
leases every 10 s) checks the promise: the work runs elsewhere within 60 s.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from pikube.sim import BoardSpec
from tests.master.controllers.conftest import Cluster, make_cluster, stop_cluster, wait_for

pytestmark = pytest.mark.integration

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %(ns)s}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1", ports: [{name: http, containerPort: 80}]}]
      %(tolerations)s
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""
SHORT_TOLERATION = ("tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, "
                    "tolerationSeconds: 1}]")


def running_elsewhere(c: Cluster, ns: str, lost: str) -> bool:
    pods = [p for p in c.pods(ns, "app=web") if not p["metadata"].get("deletionTimestamp")]
    good = [p for p in pods if p["spec"].get("nodeName") not in (None, lost) and any(
        x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or [])]
    return len(good) == 3 and len(pods) == 3


def node(c: Cluster, name: str) -> dict[str, Any]:
    return c.get("v1", "nodes", "", name) or {}


def ready_of(n: dict[str, Any]) -> str:
    return next((x["status"] for x in n.get("status", {}).get("conditions") or [] if x["type"] == "Ready"), "")


def victim(c: Cluster, ns: str) -> str:
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    nodes = sorted({p["spec"]["nodeName"] for p in c.pods(ns, "app=web")})
    return nodes[0]


def test_lost_board_with_short_timings(tmp_path_factory: pytest.TempPathFactory) -> None:
    c = make_cluster(tmp_path_factory.mktemp("loss"))
    try:
        for _ in range(3):
            c.fleet.add()
        ns = c.namespace("loss")
        c.kubectl("apply", "-f", "-", input=DEPLOY % {"ns": ns, "tolerations": SHORT_TOLERATION})
        lost = victim(c, ns)
        lost_ips = {p["status"]["podIP"] for p in c.pods(ns, "app=web") if p["spec"]["nodeName"] == lost}
        wait_for(lambda: lost_ips <= {a["ip"] for s in (c.get("v1", "endpoints", ns, "web") or {}).get(
            "subsets") or [] for a in s.get("addresses") or []}, what="endpoints before the loss")

        c.fleet[lost].halt()
        def unreachable() -> dict[str, Any] | None:
            x = node(c, lost)  # the condition and the taints are written one after the other, as Kubernetes does
            effects = {t["effect"] for t in (x or {}).get("spec", {}).get("taints") or []
                       if t["key"] == "node.kubernetes.io/unreachable"}
            return x if x and ready_of(x) == "Unknown" and effects == {"NoExecute", "NoSchedule"} else None

        n = wait_for(unreachable, timeout=20, what="the silent board Ready=Unknown and tainted")
        taints = {(t["key"], t["effect"]) for t in n["spec"].get("taints") or []}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in taints
        assert ("node.kubernetes.io/unreachable", "NoSchedule") in taints
        reason = next(x for x in n["status"]["conditions"] if x["type"] == "Ready")["message"]
        assert reason == "Kubelet stopped posting node status."
        wait_for(lambda: running_elsewhere(c, ns, lost), timeout=30, what="pods running on other boards")

        def addresses() -> set[str]:
            return {a["ip"] for s in (c.get("v1", "endpoints", ns, "web") or {}).get("subsets") or []
                    for a in s.get("addresses") or []}

        wait_for(lambda: len(addresses()) == 3, what="three ready addresses again")
        assert not lost_ips & addresses()

        # The board comes back: Ready again, untainted, schedulable.
        c.fleet.boards.pop(lost)
        c.fleet.add(lost)
        wait_for(lambda: ready_of(x := node(c, lost)) == "True" and not x["spec"].get("taints"), timeout=20,
                 what="the returning board Ready and untainted")
    finally:
        stop_cluster(c)


def test_lost_board_at_default_timings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Defaults everywhere: the master's (grace 40 s, toleration 30 s) and the boards' (lease every 10 s)."""
    defaults = {"node_monitor_grace_seconds": 40.0, "node_monitor_period_seconds": 5.0,
                "controller_resync_seconds": 300.0}
    c = make_cluster(tmp_path_factory.mktemp("loss-default"), defaults, BoardSpec(name="pi"))
    try:
        for _ in range(3):
            c.fleet.add()
        ns = c.namespace("loss")
        c.kubectl("apply", "-f", "-", input=DEPLOY % {"ns": ns, "tolerations": ""})
        lost = victim(c, ns)
        pod = next(p for p in c.pods(ns, "app=web") if p["spec"]["nodeName"] == lost)
        toleration = next(t for t in pod["spec"]["tolerations"] if t["key"] == "node.kubernetes.io/unreachable")
        assert toleration["tolerationSeconds"] == 30, "pods get the default toleration"
        c.fleet[lost].halt()
        start = time.monotonic()
        wait_for(lambda: ready_of(node(c, lost)) == "Unknown", timeout=60, what="NotReady", every=0.5)
        unknown_after = time.monotonic() - start
        wait_for(lambda: running_elsewhere(c, ns, lost), timeout=65 - unknown_after, what="pods elsewhere",
                 every=0.5)
        elapsed = time.monotonic() - start
        assert 30 <= unknown_after <= 50, unknown_after
        assert elapsed <= 60, f"the lost board's pods took {elapsed:.0f} s to run elsewhere"
    finally:
        stop_cluster(c)
