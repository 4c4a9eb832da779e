"""The scheduler's picture of the cluster: per-node allocatable and requested resources, kept incrementally.

Each node's sums (cpu, memory, pod count, host ports, pods per owner) change
by one pod at a time as pods are bound, finish or go away, so placing a pod
costs O(nodes), never O(pods * nodes). A pod the scheduler has just placed is
*assumed* on its node at once — before the binding is written and long before
the watch reports it — so the next pod already sees its resources taken; the
watch then confirms it, or a failed binding forgets it.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.kube import scheduling

Obj = dict[str, Any]
Port = tuple[str, str, int]


@dataclass(frozen=True)
class Usage:
    """What one pod takes from its node."""

    cpu: int
    memory: int
    score_cpu: int  # with kube-scheduler's non-zero defaults, for scoring only
    score_memory: int
    ports: frozenset[Port]
    owner: str

    @classmethod
    def of(cls, pod: Obj) -> Usage:
        spec = pod.get("spec") or {}
        cpu, mem = scheduling.pod_requests(spec)
        owner = ""
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
            if isinstance(ref, dict) and ref.get("controller"):
                owner = str(ref.get("uid", ""))
        return cls(cpu, mem, cpu or scheduling.DEFAULT_CPU_MILLIS, mem or scheduling.DEFAULT_MEMORY,
                   frozenset(scheduling.host_ports(spec)), owner)


@dataclass
class NodeInfo:
    name: str
    node: Obj
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_pods: int = 0
    cpu: int = 0
    memory: int = 0
    score_cpu: int = 0
    score_memory: int = 0
    pods: int = 0
    ports: Counter[Port] = field(default_factory=Counter)
    owners: Counter[str] = field(default_factory=Counter)

    def add(self, u: Usage, sign: int = 1) -> None:
        self.cpu += sign * u.cpu
        self.memory += sign * u.memory
        self.score_cpu += sign * u.score_cpu
        self.score_memory += sign * u.score_memory
        self.pods += sign
        for p in u.ports:
            self.ports[p] += sign
            if self.ports[p] <= 0:
                del self.ports[p]
        if u.owner:
            self.owners[u.owner] += sign
            if self.owners[u.owner] <= 0:
                del self.owners[u.owner]


def _static_view(node: Obj) -> tuple[Any, ...]:
    """What node filters look at, besides resources: a change re-opens cached verdicts."""
    return (node.get("metadata", {}).get("labels"), (node.get("spec") or {}).get("unschedulable"),
            scheduling.effective_taints(node), scheduling.allocatable(node))


class Cache:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.nodes: dict[str, NodeInfo] = {}
        self._views: dict[str, tuple[Any, ...]] = {}
        self._pods: dict[str, tuple[str, Usage]] = {}
        self._assumed: set[str] = set()
        # Bumped whenever a node appears, goes, or changes what static filters read.
        self.generation = 0

    def update_node(self, node: Obj) -> bool:
        """Add or refresh a node; True if anything a filter reads changed."""
        name = node["metadata"]["name"]
        view = _static_view(node)
        with self.lock:
            info = self.nodes.get(name)
            if info is None:
                info = NodeInfo(name, node)
                for u in (u for n, u in self._pods.values() if n == name):
                    info.add(u)
                self.nodes[name] = info
            info.node = node
            info.alloc_cpu, info.alloc_memory, info.alloc_pods = scheduling.allocatable(node)
            if self._views.get(name) == view:
                return False
            self._views[name] = view
            self.generation += 1
            return True

    def remove_node(self, name: str) -> None:
        with self.lock:
            if self.nodes.pop(name, None) is not None:
                self._views.pop(name, None)
                self.generation += 1

    def has_pod(self, key: str, node: str) -> bool:
        entry = self._pods.get(key)
        return entry is not None and entry[0] == node

    def add_pod(self, key: str, node: str, usage: Usage) -> None:
        """A pod bound to `node` (from the watch): counted once, even if it was assumed."""
        with self.lock:
            self._assumed.discard(key)
            current = self._pods.get(key)
            if current is not None and current[0] == node:
                return
            if current is not None:
                self._remove_locked(key)
            self._pods[key] = (node, usage)
            info = self.nodes.get(node)
            if info is not None:
                info.add(usage)

    def remove_pod(self, key: str) -> bool:
        """Forget a pod (deleted or finished); True if it was counted on a node."""
        with self.lock:
            self._assumed.discard(key)
            return self._remove_locked(key)

    def _remove_locked(self, key: str) -> bool:
        current = self._pods.pop(key, None)
        if current is None:
            return False
        info = self.nodes.get(current[0])
        if info is not None:
            info.add(current[1], -1)
        return True

    def assume(self, key: str, node: str, usage: Usage) -> None:
        with self.lock:
            self.add_pod(key, node, usage)
            self._assumed.add(key)

    def forget(self, key: str) -> None:
        """An assumed pod whose binding failed."""
        with self.lock:
            if key in self._assumed:
                self._assumed.discard(key)
                self._remove_locked(key)

    def is_placed(self, key: str) -> bool:
        """Assumed or bound: the pod needs no scheduling."""
        return key in self._pods
