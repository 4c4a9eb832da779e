"""DaemonSets: a pod per eligible board, boards joining later, taints honoured, rolling updates."""

from __future__ import annotations

from typing import Any

import pytest

from tests.master.controllers.conftest import Cluster, wait_for

pytestmark = pytest.mark.integration

DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: %(ns)s}
spec:
  selector: {matchLabels: {app: agent}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "busybox:%(tag)s"}]
      %(tolerations)s
"""


def nodes_running(c: Cluster, ns: str) -> dict[str, str]:
    """node name -> image of the live, ready agent pod there."""
    out: dict[str, str] = {}
    for p in c.pods(ns, "app=agent"):
        ready = any(x.get("type") == "Ready" and x.get("status") == "True"
                    for x in (p.get("status") or {}).get("conditions") or [])
        if p["spec"].get("nodeName") and ready and not p["metadata"].get("deletionTimestamp"):
            out[p["spec"]["nodeName"]] = p["spec"]["containers"][0]["image"]
    return out


def apply(c: Cluster, ns: str, tag: str, tolerate: bool) -> None:
    tolerations = "tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]" \
        if tolerate else ""
    c.kubectl("apply", "-f", "-", input=DS % {"ns": ns, "tag": tag, "tolerations": tolerations})


def test_covers_late_boards_and_skips_tainted_ones(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("ds")
    c.fleet.add("pi-tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    apply(c, ns, "1", tolerate=False)
    c.kubectl("rollout", "status", "daemonset/agent", "-n", ns, "--timeout=60s")
    assert set(nodes_running(c, ns)) == {"pi-1", "pi-2", "pi-3"}

    c.fleet.add("pi-late")
    wait_for(lambda: set(nodes_running(c, ns)) == {"pi-1", "pi-2", "pi-3", "pi-late"}, what="pod on the late board")
    ds: dict[str, Any] = c.get("apps/v1", "daemonsets", ns, "agent") or {}
    wait_for(lambda: (c.get("apps/v1", "daemonsets", ns, "agent") or {}).get("status", {}).get(
        "numberReady") == 4, what="status numberReady 4")
    ds = c.get("apps/v1", "daemonsets", ns, "agent") or {}
    assert ds["status"]["desiredNumberScheduled"] == 4
    assert ds["status"].get("numberMisscheduled", 0) == 0
    pod = next(p for p in c.pods(ns, "app=agent") if p["spec"]["nodeName"] == "pi-late")
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["pi-late"]

    apply(c, ns, "1", tolerate=True)
    wait_for(lambda: "pi-tainted" in nodes_running(c, ns), what="pod on the tainted board once tolerated")

    # Rolling update: never more than maxUnavailable=1 board without a ready agent.
    worst = [5]

    def progress() -> bool:
        running = nodes_running(c, ns)
        worst[0] = min(worst[0], len(running))
        return set(running.values()) == {"busybox:2"} and len(running) == 5

    apply(c, ns, "2", tolerate=True)
    wait_for(progress, timeout=60, what="every board on the new template", every=0.02)
    c.kubectl("rollout", "status", "daemonset/agent", "-n", ns, "--timeout=30s")
    assert worst[0] >= 4


def test_cordoned_board_keeps_daemon_pods(cluster: Cluster) -> None:
    """DaemonSet pods tolerate `unschedulable`, as in Kubernetes: a cordoned board still runs its agent."""
    c, ns = cluster, cluster.namespace("ds-cordon")
    c.kubectl("cordon", "pi-2")
    try:
        apply(c, ns, "1", tolerate=False)
        wait_for(lambda: "pi-2" in nodes_running(c, ns), what="daemon pod on the cordoned board")
    finally:
        c.kubectl("uncordon", "pi-2")


def test_deleted_node_takes_its_pods_away(cluster: Cluster) -> None:
    """`kubectl delete node`: the board's pods go too (PodGC), and the DaemonSet stops counting it."""
    c, ns = cluster, cluster.namespace("ds-delete")
    board = c.fleet.add("pi-doomed")
    apply(c, ns, "1", tolerate=False)
    wait_for(lambda: "pi-doomed" in nodes_running(c, ns), what="a daemon pod on the doomed board")
    c.admin.create(f"/api/v1/namespaces/{ns}/pods", {
        "metadata": {"name": "pinned"}, "spec": {"nodeName": "pi-doomed", "containers": [{"name": "c",
                                                                                        "image": "nginx:1"}]}})
    board.halt()
    c.kubectl("delete", "node", "pi-doomed")
    wait_for(lambda: not [p for p in c.pods(ns) if p["spec"].get("nodeName") == "pi-doomed"
                          or "pi-doomed" in str(p["spec"].get("affinity"))], what="its pods deleted")
    wait_for(lambda: (c.get("apps/v1", "daemonsets", ns, "agent") or {}).get("status", {}).get(
        "desiredNumberScheduled") == len(nodes_running(c, ns)), what="status without the deleted node")
