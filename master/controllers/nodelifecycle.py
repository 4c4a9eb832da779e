"""Node lifecycle: notice boards that stopped heartbeating, taint them, and move their pods away.

Every `node_monitor_period` each node's heartbeat (its Lease in
`kube-node-lease`, or its Ready condition's `lastHeartbeatTime`) is compared
with the last one seen; the time is taken from this master's clock when the
heartbeat *changes*, so a board's wrong clock cannot fool it. A node silent for
`node_monitor_grace` becomes Ready=Unknown ("Kubelet stopped posting node
status."), its pods are marked not Ready (so Services stop sending them
traffic), and it is tainted `node.kubernetes.io/unreachable` (NoSchedule and
NoExecute); a node reporting Ready=False gets `not-ready` instead, and a
Ready one loses both. A node that has never posted its status gets no verdict
(and no taint, so no eviction countdown starts) until the same grace has run
out since this master first saw it; then its conditions are written Unknown,
"Kubelet never posted node status." (NodeStatusNeverUpdated), and it is tainted
unreachable like any silent node. The NoExecute taints are then enforced by
`eviction`; pods bound to a node that was deleted are deleted too (Kubernetes'
PodGC).

Time is read from one `Clock` given to the constructor (the `time` module by
default), which the work queue's timers share, so a test can move a grace
period forward without sleeping or patching modules.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from typing import Any, Protocol

from core.kube import timefmt
from core.kube.scheduling import NOT_READY, UNREACHABLE, ready_status
from core.workqueue import WorkQueue
from master.client import Env, Informer, split_key
from master.controllers import eviction, podutil
from master.controllers.base import Controller

Obj = dict[str, Any]
COMPONENT = "node-controller"
_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


class Clock(Protocol):
    """Where the controller reads time: the `time` module, or a test's clock that moves when told."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    workers = 1

    def __init__(self, env: Env, clock: Clock = time) -> None:
        super().__init__(env)
        self.clock = clock
        self.queue = WorkQueue(self.name, clock=clock.monotonic)  # its `add_after` timers on the same clock
        self.nodes: Informer = env.informers.informer(self.kinds.nodes)
        self.leases: Informer = env.informers.informer(self.kinds.leases)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.pods.add_indexer("node", lambda p: [str((p.get("spec") or {}).get("nodeName") or "")])
        # node -> (heartbeat signature, monotonic time it last changed, wall-clock time of that)
        self._probes: dict[str, tuple[tuple[str, ...], float, float]] = {}
        self.primary = self.nodes
        self.nodes.add_handler(lambda old, new: self.enqueue(new or old))
        self.leases.add_handler(self._lease_changed)

    def resync_period(self) -> float:
        return self.env.settings.node_monitor_period_seconds

    def _lease_changed(self, old: Obj | None, new: Obj | None) -> None:
        lease = new or old
        if lease is not None and podutil.meta(lease).get("namespace") == "kube-node-lease":
            self.queue.add(podutil.meta(lease).get("name", ""))

    def _heard(self, node: Obj) -> tuple[float, float]:
        """(monotonic, wall) time this master last saw the node's heartbeat move."""
        name = node["metadata"]["name"]
        lease = self.leases.get("kube-node-lease", name)
        ready = podutil.condition(node, "Ready") or {}
        sig = (str(((lease or {}).get("spec") or {}).get("renewTime") or ""),
               str(ready.get("lastHeartbeatTime") or ""))
        probe = self._probes.get(name)
        if probe is None or probe[0] != sig:
            probe = (sig, self.clock.monotonic(), self.clock.time())
            self._probes[name] = probe
        return probe[1], probe[2]

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        cached = self.nodes.get("", name)
        if cached is None:
            self._probes.pop(name, None)
            if self.client.get(self.kinds.nodes, "", name) is None:
                self._collect_orphans(name)
            return
        node = copy.deepcopy(cached)
        heard, heard_wall = self._heard(node)
        grace = self.env.settings.node_monitor_grace_seconds
        lost = self.clock.monotonic() - heard > grace
        if lost and (podutil.condition(node, "Ready") is None or ready_status(node) != "Unknown"):
            self._mark_unknown(node)
        elif not lost:
            self.queue.add_after(key, heard + grace - self.clock.monotonic() + 0.1)
        # No Ready condition: the kubelet has not reported yet and its grace has not run out. Kubernetes gives
        # such a node no verdict: no taints, and (below) no grace-0 deletions as if no kubelet were coming.
        reported = podutil.condition(node, "Ready") is not None
        if reported:
            self._update_taints(node, ready_status(node), heard_wall)
        pods = self.pods.by_index("node", name)
        wait = eviction.enforce(self.env, node, pods, reported and ready_status(node) != "True", self._now())
        if wait is not None:
            self.queue.add_after(key, wait)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.time(), dt.UTC)

    def _collect_orphans(self, node: str) -> None:
        """Pods bound to a node that no longer exists will never be confirmed gone: delete them (PodGC)."""
        for pod in self.pods.by_index("node", node):
            m = podutil.meta(pod)
            self.client.delete(self.kinds.pods, m["namespace"], m["name"], grace=0, uid=m["uid"])

    def _mark_unknown(self, node: Obj) -> None:
        at = self._now()
        stamp = timefmt.rfc3339(at)
        status = node.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        seen = {c.get("type") for c in conditions}
        for c in conditions:
            if c.get("type") in _CONDITIONS and c.get("status") != "Unknown":
                c.update({"status": "Unknown", "reason": "NodeStatusUnknown", "lastTransitionTime": stamp,
                          "message": "Kubelet stopped posting node status."})
        for kind in _CONDITIONS:
            if kind not in seen:
                conditions.append({"type": kind, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                                   "message": "Kubelet never posted node status.",
                                   "lastHeartbeatTime": podutil.meta(node).get("creationTimestamp"),
                                   "lastTransitionTime": stamp})
        status["conditions"] = conditions
        node["metadata"] = self.client.update_status(self.kinds.nodes, node)["metadata"]
        self.env.recorder.event(node, "Normal", "NodeNotReady",
                                f"Node {node['metadata']['name']} status is now: NodeNotReady", COMPONENT)
        for pod in self.pods.by_index("node", node["metadata"]["name"]):
            eviction.mark_not_ready(self.client, pod, at)

    def _update_taints(self, node: Obj, ready: str, heard_wall: float) -> None:
        spec = node.setdefault("spec", {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") not in (NOT_READY, UNREACHABLE)]
        if ready != "True":
            key = NOT_READY if ready == "False" else UNREACHABLE
            existing = {t.get("effect"): t for t in spec.get("taints") or [] if t.get("key") == key}
            # Unreachable counts from when the board was last heard from, not from when we noticed:
            # a pod's tolerationSeconds then measures the outage itself (see docs/controllers.md).
            since = heard_wall if key == UNREACHABLE else self.clock.time()
            stamp = timefmt.rfc3339(dt.datetime.fromtimestamp(since, dt.UTC))
            taints.append(existing.get("NoSchedule") or {"key": key, "effect": "NoSchedule"})
            taints.append(existing.get("NoExecute") or {"key": key, "effect": "NoExecute", "timeAdded": stamp})
        if taints == (spec.get("taints") or []):
            return
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        node["metadata"] = self.client.update(self.kinds.nodes, node)["metadata"]
