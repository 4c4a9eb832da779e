"""Which nodes a DaemonSet should run on, what runs there now, and the status that follows.

Kept apart from the controller so the node-by-node plan is a pure function of
(nodes, pods, template) that tests can check directly.

As in Kubernetes (NodeShouldRunDaemonPod), a node gets two verdicts, both
judged with the tolerations the daemon pod would really carry (the template's
plus the automatic ones, network-unavailable too for a hostNetwork pod):
whether a new pod should be placed there (nodeSelector, required node affinity
and every NoSchedule/NoExecute taint tolerated), and whether a pod already
there may keep running — placing and keeping differ only in the taints: an
untolerated NoSchedule taint keeps new pods off, only an untolerated NoExecute
taint evicts. A pod that may stay where no pod should be placed is counted
misscheduled and left alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from core.kube import scheduling, timefmt
from master.controllers import podutil

Obj = dict[str, Any]
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
# Taints a DaemonSet pod always tolerates (Kubernetes adds these tolerations to every daemon pod).
AUTO_TOLERATIONS = [{"key": k, "operator": "Exists", "effect": e} for k, e in (
    (scheduling.NOT_READY, "NoExecute"), (scheduling.UNREACHABLE, "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), (scheduling.UNSCHEDULABLE, "NoSchedule"))]
# ... and this one to a hostNetwork daemon pod, so a CNI DaemonSet can bring a node's network up.
HOST_NETWORK_TOLERATION = {"key": NETWORK_UNAVAILABLE, "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class NodePlan:
    node: Obj
    should_run: bool  # a new pod belongs here
    pods: list[Obj] = field(default_factory=list)  # owned, not being deleted
    terminating: bool = False  # an owned pod is still going away
    available: bool = False
    may_stay: bool = False  # a pod already here keeps running (true wherever should_run is)


def _same(a: Obj, b: Obj) -> bool:
    """One toleration stands for the other (Kubernetes' MatchToleration: key, operator, value and effect)."""
    return all((a.get(k) or d) == (b.get(k) or d) for k, d in (("key", ""), ("operator", "Equal"), ("value", ""),
                                                                 ("effect", "")))


def daemon_tolerations(spec: Obj) -> list[Obj]:
    """The tolerations of a daemon pod made from a template `spec`: its own, with the automatic ones added.

    An automatic toleration replaces one of the template's that matches it (Kubernetes'
    AddOrUpdateTolerationInPodSpec), so the not-ready and unreachable ones are always for ever.
    """
    tolerations = [dict(t) for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    auto = [*AUTO_TOLERATIONS, HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else AUTO_TOLERATIONS
    for t in auto:
        at = next((i for i, x in enumerate(tolerations) if _same(x, t)), None)
        if at is None:
            tolerations.append(dict(t))
        else:
            tolerations[at] = dict(t)
    return tolerations


def verdict(node: Obj, template: Obj) -> tuple[bool, bool]:
    """(a new daemon pod should be placed on the node, a daemon pod there may keep running)."""
    if podutil.meta(node).get("deletionTimestamp"):
        return False, False
    spec = template.get("spec") or {}
    if spec.get("nodeName") and spec["nodeName"] != podutil.meta(node).get("name"):
        return False, False
    if not scheduling.selector_matches(spec, node):
        return False, False
    tolerations = daemon_tolerations(spec)
    taints = (node.get("spec") or {}).get("taints") or []
    if scheduling.untolerated(taints, tolerations, ("NoSchedule", "NoExecute")) is None:
        return True, True
    return False, scheduling.untolerated(taints, tolerations, ("NoExecute",)) is None


def _pod_node(pod: Obj) -> str:
    name = (pod.get("spec") or {}).get("nodeName")
    if name:
        return str(name)
    for term in scheduling.required_terms(pod.get("spec") or {}) or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and req.get("values"):
                return str(req["values"][0])
    return ""


def plan_nodes(nodes: list[Obj], pods: list[Obj], template: Obj, min_ready: int = 0) -> list[NodePlan]:
    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        by_node.setdefault(_pod_node(pod), []).append(pod)
    plans = []
    at = timefmt.now()
    for node in sorted(nodes, key=lambda n: podutil.meta(n).get("name", "")):
        here = by_node.get(podutil.meta(node).get("name", ""), [])
        live = [p for p in here if not podutil.meta(p).get("deletionTimestamp")]
        run, stay = verdict(node, template)
        plan = NodePlan(node, run, live, len(live) < len(here), may_stay=stay)
        plan.available = any(podutil.is_available(p, min_ready, at) for p in live)
        plans.append(plan)
    return plans


def strays(nodes: list[Obj], pods: list[Obj]) -> list[Obj]:
    """Live pods meant for a node that no longer exists."""
    names = {podutil.meta(n).get("name", "") for n in nodes}
    return [p for p in pods if _pod_node(p) not in names and not podutil.meta(p).get("deletionTimestamp")]


def status_for(ds: Obj, plans: list[NodePlan], current_hash: str, at: dt.datetime) -> Obj:
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    desired = [p for p in plans if p.should_run]
    scheduled = [p for p in desired if p.pods]
    updated = [p for p in scheduled if any((podutil.meta(x).get("labels") or {}).get("controller-revision-hash")
                                           == current_hash for x in p.pods)]
    ready = [p for p in scheduled if any(podutil.is_ready(x) for x in p.pods)]
    available = [p for p in scheduled if any(podutil.is_available(x, min_ready, at) for x in p.pods)]
    return {
        "currentNumberScheduled": len(scheduled),
        "numberMisscheduled": sum(1 for p in plans if not p.should_run and p.pods),
        "desiredNumberScheduled": len(desired),
        "numberReady": len(ready),
        "updatedNumberScheduled": len(updated),
        "numberAvailable": len(available),
        "numberUnavailable": len(desired) - len(available),
        "observedGeneration": int(podutil.meta(ds).get("generation") or 1),
    }
