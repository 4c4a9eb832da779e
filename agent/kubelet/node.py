"""This board's Node object: registration, status (capacity, conditions, Pi facts) and the Lease heartbeat.

As the kubelet does since node leases: the Lease in `kube-node-lease` is renewed
every 10 s (cheap, kept in memory by the master); the Node's status is written
only when something in it changed, or once a minute as a heartbeat, so an idle
board barely causes a write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.client import LEASES, NODES, ApiClient
from agent.credentials import SERVING_CERT_ANNOTATION
from agent.hostfacts import Facts
from core import __version__, errors, wellknown
from core.kube.nodelabels import node_may_set
from core.kube.timefmt import micro, rfc3339
from core.settings import AgentSettings

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KUBELET_VERSION = f"v1.29.0-pikube.{__version__}"
MODEL_ANNOTATION = wellknown.MODEL_ANNOTATION
TEMPERATURE_ANNOTATION = wellknown.TEMPERATURE_ANNOTATION
THROTTLED_ANNOTATION = wellknown.THROTTLED_ANNOTATION
THROTTLED_CONDITION = "Throttled"
# A temperature annotation is rewritten only when it moved this much, so it does not cause a write a minute.
TEMPERATURE_STEP_C = 5.0


@dataclass(frozen=True)
class NodeIdentity:
    """What does not change while the agent runs."""

    node_ip: str
    runtime_version: str
    serving_cert_sha256: str
    # Published for the other boards, e.g. the vxlan VTEP MAC (agent/netsync).
    extra_annotations: tuple[tuple[str, str], ...] = ()


def labels(settings: AgentSettings, facts: Facts) -> dict[str, str]:
    found = {
        "kubernetes.io/hostname": settings.node_name,
        "kubernetes.io/arch": facts.arch,
        "kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.arch,
        "beta.kubernetes.io/os": "linux",
    }
    if settings.master_board:
        # Information only: a node may not set node-role labels itself (NodeRestriction); the master
        # gives them to the board its settings name (MasterSettings.board_node), whatever this says.
        found[wellknown.BOARD_ROLE_LABEL] = "master"
    for key, value in settings.node_labels:
        if node_may_set(key):
            found[key] = value
        elif key not in _REFUSED_WARNED:
            _REFUSED_WARNED.add(key)
            log.warning("not setting node label %s: a node may not set labels in that domain "
                        "(the master refuses them)", key)
    return found


_REFUSED_WARNED: set[str] = set()


def node_annotations(ident: NodeIdentity, facts: Facts, temperature: float | None) -> dict[str, str]:
    found = {SERVING_CERT_ANNOTATION: ident.serving_cert_sha256, **dict(ident.extra_annotations)}
    if facts.board_model:
        found[MODEL_ANNOTATION] = facts.board_model
    if temperature is not None:
        found[TEMPERATURE_ANNOTATION] = f"{temperature:.1f}"
    if facts.throttled is not None:
        found[THROTTLED_ANNOTATION] = f"0x{facts.throttled:x}"
    return found


def _condition(kind: str, bad: bool, reason_ok: str, reason_bad: str, msg_ok: str, msg_bad: str) -> Obj:
    return {"type": kind, "status": "True" if bad else "False", "reason": reason_bad if bad else reason_ok,
            "message": msg_bad if bad else msg_ok}


def conditions(settings: AgentSettings, facts: Facts, runtime_error: str | None) -> list[Obj]:
    mem = facts.memory_available_bytes < settings.memory_pressure_bytes
    disk = facts.disk_bytes > 0 and facts.disk_free_bytes < facts.disk_bytes * settings.disk_pressure_fraction
    pid = facts.pids > facts.pid_max * 0.9
    found = [
        _condition("MemoryPressure", mem, "KubeletHasSufficientMemory", "KubeletHasInsufficientMemory",
                   "kubelet has sufficient memory available", "kubelet has insufficient memory available"),
        _condition("DiskPressure", disk, "KubeletHasNoDiskPressure", "KubeletHasDiskPressure",
                   "kubelet has no disk pressure", "kubelet has disk pressure"),
        _condition("PIDPressure", pid, "KubeletHasSufficientPID", "KubeletHasInsufficientPID",
                   "kubelet has sufficient PID available", "kubelet has insufficient PID available"),
    ]
    throttled = facts.throttled_now
    if facts.throttled is not None:
        found.append(_condition(THROTTLED_CONDITION, bool(throttled), "NotThrottled", "BoardThrottled",
                                "the board's firmware reports no throttling",
                                "the board's firmware reports: " + ", ".join(throttled)))
    ready = runtime_error is None
    found.append({"type": "Ready", "status": "True" if ready else "False",
                  "reason": "KubeletReady" if ready else "KubeletNotReady",
                  "message": "kubelet is posting ready status" if ready else
                  f"container runtime is down: {runtime_error}"})
    return found


def status(settings: AgentSettings, ident: NodeIdentity, facts: Facts, runtime_error: str | None) -> Obj:
    mem_ki = facts.memory_bytes // 1024
    reserved_ki = settings.memory_pressure_bytes // 1024
    disk_ki = facts.disk_bytes // 1024
    capacity = {"cpu": str(facts.cpus), "memory": f"{mem_ki}Ki", "pods": str(settings.max_pods),
                "ephemeral-storage": f"{disk_ki}Ki"}
    allocatable = {**capacity, "memory": f"{max(mem_ki - reserved_ki, 0)}Ki",
                   "ephemeral-storage": str(int(disk_ki * 1024 * (1 - settings.disk_pressure_fraction)))}
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions(settings, facts, runtime_error),
        "addresses": [{"type": "InternalIP", "address": ident.node_ip},
                      {"type": "Hostname", "address": settings.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": settings.log_port}},
        "nodeInfo": {
            "machineID": facts.machine_id, "systemUUID": facts.machine_id, "bootID": facts.boot_id,
            "kernelVersion": facts.kernel, "osImage": facts.os_image,
            "containerRuntimeVersion": ident.runtime_version, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": facts.arch,
        },
    }


def _stamped(new: list[Obj], old: list[Obj], now: str, heartbeat: bool) -> list[Obj]:
    """Conditions with lastTransitionTime kept while the status holds, lastHeartbeatTime moved on a heartbeat."""
    before = {c.get("type"): c for c in old}
    out = []
    for c in new:
        prev = before.get(c["type"])
        same = prev is not None and prev.get("status") == c["status"]
        out.append({**c,
                    "lastHeartbeatTime": now if heartbeat or not prev else prev.get("lastHeartbeatTime", now),
                    "lastTransitionTime": prev.get("lastTransitionTime", now) if same and prev else now})
    return out


class NodeReporter:
    """Registers the Node and keeps its status, labels, annotations and Lease current."""

    def __init__(self, api: ApiClient, settings: AgentSettings, ident: NodeIdentity,
                 facts: Callable[[], Facts], runtime_error: Callable[[], str | None],
                 clock: Callable[[], float]) -> None:
        self.api, self.settings, self.ident = api, settings, ident
        self._facts, self._runtime_error, self._clock = facts, runtime_error, clock
        self._last_written: Obj | None = None
        self._last_write_at = 0.0
        self._conditions: list[Obj] = []
        self._temperature: float | None = None
        self._meta: tuple[dict[str, str], dict[str, str]] | None = None
        self.node: Obj = {}

    def register(self) -> Obj:
        """Create the Node (or adopt the one with our name) and write its status at once."""
        facts = self._facts()
        self._temperature = facts.soc_temperature_c
        meta = {"labels": labels(self.settings, facts),
                "annotations": node_annotations(self.ident, facts, self._temperature)}
        try:
            self.node = self.api.get(NODES, self.settings.node_name)
            self.node = self.api.patch(NODES, self.settings.node_name, {"metadata": meta})
        except errors.NotFound:
            self.node = self.api.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                                "metadata": {"name": self.settings.node_name, **meta},
                                                "spec": {}})
        self._meta = (meta["labels"], meta["annotations"])
        self._conditions = list((self.node.get("status") or {}).get("conditions") or [])
        self.sync(force=True)
        return self.node

    def sync(self, force: bool = False) -> bool:
        """Write status if it changed or a heartbeat is due; True if written."""
        facts = self._facts()
        self._sync_metadata(facts)
        body = status(self.settings, self.ident, facts, self._runtime_error())
        now_s = self._clock()
        due = force or now_s - self._last_write_at >= self.settings.status_report_seconds
        comparable = {**body, "conditions": [{k: v for k, v in c.items() if "Time" not in k}
                                             for c in body["conditions"]]}
        if not due and comparable == self._last_written:
            return False
        stamp = rfc3339()
        body["conditions"] = _stamped(body["conditions"], self._conditions, stamp, heartbeat=True)
        self.node = self.api.patch(NODES, self.settings.node_name, {"status": body}, sub="status")
        self._conditions = body["conditions"]
        self._last_written, self._last_write_at = comparable, now_s
        return True

    def _sync_metadata(self, facts: Facts) -> None:
        temp = facts.soc_temperature_c
        if temp is not None and (self._temperature is None or abs(temp - self._temperature) >= TEMPERATURE_STEP_C):
            self._temperature = temp
        meta = (labels(self.settings, facts), node_annotations(self.ident, facts, self._temperature))
        if meta == self._meta:
            return
        self.node = self.api.patch(NODES, self.settings.node_name,
                                   {"metadata": {"labels": meta[0], "annotations": meta[1]}})
        self._meta = meta

    def renew_lease(self) -> None:
        name, ns = self.settings.node_name, "kube-node-lease"
        spec = {"holderIdentity": name, "leaseDurationSeconds": self.settings.lease_duration_seconds,
                "renewTime": micro()}
        try:
            self.api.patch(LEASES, name, {"spec": spec}, namespace=ns)
        except errors.NotFound:
            owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": self.node["metadata"]["uid"]}
            self.api.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                     "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner]},
                                     "spec": spec}, namespace=ns)
