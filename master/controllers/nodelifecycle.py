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

Eviction is gated per zone (`disruption.py`): while a zone is fully disrupted
(or partially, in a small cluster) its nodes get no NoExecute taint — one
already there is lifted — so none of its pods is evicted; when evictions resume
every node of the zone gets a fresh grace period from that moment.

Time is read from one `Clock` given to the constructor (the `time` module by
default), which the work queue's timers share, so a test can move a grace
period forward without sleeping or patching modules.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from typing import Any, Protocol

from core import errors
from core.kube import timefmt
from core.kube.scheduling import NOT_READY, UNREACHABLE, ready_status
from core.workqueue import WorkQueue
from master.client import Env, Informer, split_key
from master.controllers import disruption, eviction, podutil
from master.controllers.base import Controller

Obj = dict[str, Any]
log = logging.getLogger(__name__)
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
        # zone -> its last eviction mode (disruption.py); zone -> monotonic time a node there was last tainted
        # NoExecute while the zone evicts at the secondary rate
        self._zones: dict[str, disruption.EvictionMode] = {}
        self._zone_tainted: dict[str, float] = {}
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
        try:
            self._sync_node(key, copy.deepcopy(cached))
        except errors.Conflict:
            # Our cached copy is behind (a zone change queued this node while its last write was still on its way):
            # the newer version's watch event queues it again.
            log.debug("%s: node %s changed meanwhile; looking again when the cache has it", self.name, name)

    def _sync_node(self, key: str, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._heard(node)
        zone = disruption.zone_of(node)
        mode = self._zone_mode(zone)  # may give every node of the zone a fresh grace: read the heartbeat after it
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
            retry = self._update_taints(node, ready_status(node), heard_wall, lost, zone, mode)
            if retry is not None:
                self.queue.add_after(key, retry)
        pods = self.pods.by_index("node", name)
        # In a zone whose evictions are stopped nothing is force-deleted either: its boards may well be running.
        gone = reported and ready_status(node) != "True" and mode != "stopped"
        wait = eviction.enforce(self.env, node, pods, gone, self._now())
        if wait is not None:
            self.queue.add_after(key, wait)

    def _unhealthy(self, node: Obj) -> bool:
        """Counts against its zone: Ready not True, or silent for over half the grace period.

        The second is pikube's: boards that lose the network together fall silent within one lease interval of
        each other, but their grace periods run out one by one; counting a node that is well on its way to being
        lost (a live board renews its lease every quarter grace) lets the first of them already see the zone
        disrupted, instead of being evicted before the others are noticed.
        """
        if podutil.condition(node, "Ready") is not None and ready_status(node) != "True":
            return True
        heard, _ = self._heard(node)
        return self.clock.monotonic() - heard > self.env.settings.node_monitor_grace_seconds / 2

    def _zone_mode(self, zone: str) -> disruption.EvictionMode:
        """The zone's eviction mode now; on a change every node of the zone is looked at again, and when
        evictions resume every node there gets a fresh grace period from now (as Kubernetes resets its probe
        timestamps on leaving disruption), so boards coming back one by one are not evicted before the rest."""
        s = self.env.settings
        nodes = self.nodes.list()
        members = [n for n in nodes if disruption.zone_of(n) == zone]
        unhealthy = sum(1 for n in members if self._unhealthy(n))
        state = disruption.zone_state(len(members) - unhealthy, unhealthy, s.unhealthy_zone_threshold)
        mode = disruption.eviction_mode(state, len(nodes), s.large_cluster_size_threshold)
        before = self._zones.get(zone)
        if before == mode:
            return mode
        self._zones[zone] = mode
        if before is None:
            return mode
        log.warning("zone %r: %s (%d of %d nodes unhealthy), evictions %s", zone, state, unhealthy, len(members),
                    mode)
        now, wall = self.clock.monotonic(), self.clock.time()
        for n in members:
            member = podutil.meta(n).get("name", "")
            if before == "stopped" and member in self._probes:
                self._probes[member] = (self._probes[member][0], now, wall)
            self.queue.add(member)
        return mode

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

    def _update_taints(self, node: Obj, ready: str, heard_wall: float, lost: bool, zone: str,
                       mode: disruption.EvictionMode) -> float | None:
        """Write the node's not-ready/unreachable taints; the seconds until a withheld NoExecute may be added."""
        spec = node.setdefault("spec", {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") not in (NOT_READY, UNREACHABLE)]
        retry: float | None = None
        if ready != "True":
            key = NOT_READY if ready == "False" else UNREACHABLE
            existing = {t.get("effect"): t for t in spec.get("taints") or [] if t.get("key") == key}
            # Unreachable counts from when the board was last heard from, not from when we noticed:
            # a pod's tolerationSeconds then measures the outage itself (see docs/controllers.md).
            since = heard_wall if key == UNREACHABLE else self.clock.time()
            stamp = timefmt.rfc3339(dt.datetime.fromtimestamp(since, dt.UTC))
            taints.append(existing.get("NoSchedule") or {"key": key, "effect": "NoSchedule"})
            # NoExecute is what evicts: none in a zone whose evictions are stopped (one already there is lifted,
            # as Kubernetes marks every node reachable again); a new one only for a node silent past its grace
            # (or reporting NotReady), at most one per secondary-rate interval in a zone evicting at that rate.
            if mode != "stopped" and "NoExecute" in existing:
                taints.append(existing["NoExecute"])
            elif mode != "stopped" and (lost or key == NOT_READY):
                retry = self._secondary_wait(zone) if mode == "secondary" else None
                if retry is None:
                    taints.append({"key": key, "effect": "NoExecute", "timeAdded": stamp})
        if taints == (spec.get("taints") or []):
            return retry
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)
        node["metadata"] = self.client.update(self.kinds.nodes, node)["metadata"]
        return retry

    def _secondary_wait(self, zone: str) -> float | None:
        """None (and the slot taken) if a node of `zone` may be tainted NoExecute now, else seconds to wait."""
        interval = 1.0 / max(self.env.settings.secondary_node_eviction_rate, 1e-9)
        now = self.clock.monotonic()
        last = self._zone_tainted.get(zone)
        if last is not None and now - last < interval:
            return last + interval - now + 0.05
        self._zone_tainted[zone] = now
        return None
