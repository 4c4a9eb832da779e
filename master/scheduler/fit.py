"""Placing one pod: filter the nodes, score the survivors, explain a failure as kube-scheduler does.

Filters run per node in kube-scheduler's order and stop at the first that
fails: NodeUnschedulable, TaintToleration, NodeAffinity (nodeSelector and
required affinity, `kubernetes.io/arch` included), NodePorts,
NodeResourcesFit. The first three read only the node's labels, taints and
flags, so their verdicts are cached per pod *shape* (selector, affinity,
tolerations) until a node changes: the pods of one ReplicaSet share one.
Scores: least allocated (cpu and memory) plus, with weight 2, spreading the
pods of one owner across nodes; ties are broken at random.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.kube import scheduling
from master.scheduler.cache import Cache, NodeInfo, Usage

Obj = dict[str, Any]
UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
PORTS = "node(s) didn't have free ports for the requested pod ports"
SPREAD_WEIGHT = 2
_UNSCHEDULABLE_TAINT = {"key": scheduling.UNSCHEDULABLE, "effect": "NoSchedule"}


@dataclass
class Placement:
    node: str | None
    reasons: Counter[str]
    nodes: int
    error: str | None = None  # a reason that holds for every node (a missing claim)

    def message(self) -> str:
        if self.nodes == 0:
            return "no nodes available to schedule pods"
        if self.error is not None:
            return f"0/{self.nodes} nodes are available: {self.error}."
        parts = sorted(f"{count} {reason}" for reason, count in self.reasons.items())
        return f"0/{self.nodes} nodes are available: {', '.join(parts)}."


def shape(spec: Obj) -> str:
    return json.dumps([spec.get("nodeSelector"), spec.get("affinity"), spec.get("tolerations")], sort_keys=True)


def static_reason(spec: Obj, tolerations: list[Obj], info: NodeInfo) -> str | None:
    node = info.node
    if (node.get("spec") or {}).get("unschedulable") and \
            not any(scheduling.tolerates(t, _UNSCHEDULABLE_TAINT) for t in tolerations):
        return UNSCHEDULABLE
    taint = scheduling.untolerated(scheduling.effective_taints(node), tolerations, ("NoSchedule", "NoExecute"))
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"
    if not scheduling.selector_matches(spec, node):
        return AFFINITY
    return None


class Fitter:
    """Filter and score against a `Cache`; call with the cache lock held."""

    def __init__(self, cache: Cache, rng: random.Random | None = None) -> None:
        self.cache = cache
        self.rng = rng or random.Random()
        self._static: dict[str, tuple[int, list[NodeInfo], dict[str, str]]] = {}

    def _statically_feasible(self, spec: Obj) -> tuple[list[NodeInfo], dict[str, str]]:
        key = shape(spec)
        cached = self._static.get(key)
        if cached is not None and cached[0] == self.cache.generation:
            return cached[1], cached[2]
        tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
        ok: list[NodeInfo] = []
        failed: dict[str, str] = {}
        for info in self.cache.nodes.values():
            reason = static_reason(spec, tolerations, info)
            if reason is None:
                ok.append(info)
            else:
                failed[info.name] = reason
        if len(self._static) > 1024:
            self._static.clear()
        self._static[key] = (self.cache.generation, ok, failed)
        return ok, failed

    def place(self, pod: Obj, usage: Usage, extra: Callable[[NodeInfo], str | None] | None = None) -> Placement:
        """The best node for the pod; `extra` is one more filter (the pod's volumes), run after the others."""
        candidates, failed = self._statically_feasible(pod.get("spec") or {})
        reasons: Counter[str] = Counter(failed.values())
        cpu, memory, ports = usage.cpu, usage.memory, usage.ports
        feasible: list[NodeInfo] = []
        for info in candidates:  # the hot loop: kept flat on purpose
            if ports and scheduling.ports_conflict(set(ports), set(info.ports)):
                reasons[PORTS] += 1
                continue
            fits = True
            if info.pods >= info.alloc_pods:
                reasons["Too many pods"] += 1
                fits = False
            if cpu and info.cpu + cpu > info.alloc_cpu:
                reasons["Insufficient cpu"] += 1
                fits = False
            if memory and info.memory + memory > info.alloc_memory:
                reasons["Insufficient memory"] += 1
                fits = False
            if fits and extra is not None:
                reason = extra(info)
                if reason is not None:
                    reasons[reason] += 1
                    fits = False
            if fits:
                feasible.append(info)
        if not feasible:
            return Placement(None, reasons, len(self.cache.nodes))
        return Placement(self._best(feasible, usage), reasons, len(self.cache.nodes))

    def _best(self, feasible: list[NodeInfo], usage: Usage) -> str:
        """Least allocated (cpu and memory averaged, 0-100) + SPREAD_WEIGHT x spread (0-100)."""
        owner, score_cpu, score_memory = usage.owner, usage.score_cpu, usage.score_memory
        most = max(info.owners.get(owner, 0) for info in feasible) if owner else 0
        best: list[str] = []
        top = -1.0
        for info in feasible:
            score = 0.0
            alloc, used = info.alloc_cpu, info.score_cpu + score_cpu
            if alloc > 0 and used <= alloc:
                score += 50.0 * (alloc - used) / alloc
            alloc, used = info.alloc_memory, info.score_memory + score_memory
            if alloc > 0 and used <= alloc:
                score += 50.0 * (alloc - used) / alloc
            if owner:
                score += SPREAD_WEIGHT * 100.0 * (most - info.owners.get(owner, 0)) / most if most else \
                    SPREAD_WEIGHT * 100.0
            if score > top:
                top, best = score, [info.name]
            elif score == top:
                best.append(info.name)
        return best[0] if len(best) == 1 else self.rng.choice(best)
