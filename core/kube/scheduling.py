"""Pure node/pod scheduling predicates shared by the scheduler, the DaemonSet and node controllers, and the status page.

Taints and tolerations, node selectors and required node affinity, resource
requests and host ports — each as Kubernetes defines them. A node that is not
Ready is treated as carrying the `node.kubernetes.io/not-ready` (or
`unreachable`) NoSchedule taint even before the node lifecycle controller has
written it, so a board that registers NotReady never gets pods by accident.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from core.kube import quantity

Obj = dict[str, Any]
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
DEFAULT_PODS = 110
# What a pod with no requests counts as when scoring (kube-scheduler's non-zero defaults).
DEFAULT_CPU_MILLIS = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


def ready_status(node: Obj) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return str(c.get("status") or "Unknown")
    return "Unknown"


def effective_taints(node: Obj) -> list[Obj]:
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    ready = ready_status(node)
    if ready != "True":
        key = NOT_READY if ready == "False" else UNREACHABLE
        if not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            taints = [*taints, {"key": key, "effect": "NoSchedule"}]
    return taints


def tolerates(toleration: Obj, taint: Obj) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(taints: Iterable[Obj], tolerations: list[Obj], effects: tuple[str, ...]) -> Obj | None:
    """The first taint with one of `effects` that no toleration covers."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _requirement_matches(req: Obj, values_of: dict[str, str]) -> bool:
    key, op = req.get("key", ""), req.get("operator", "")
    values = [str(v) for v in req.get("values") or []]
    present = key in values_of
    value = values_of.get(key, "")
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            a, b = int(value), int(values[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def term_matches(term: Obj, node: Obj) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    labels = (node.get("metadata") or {}).get("labels") or {}
    names = {"metadata.name": (node.get("metadata") or {}).get("name", "")}
    return all(_requirement_matches(r, labels) for r in exprs) and all(_requirement_matches(r, names) for r in fields)


def required_terms(spec: Obj) -> list[Obj] | None:
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        return None
    return [t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict)]


def selector_matches(spec: Obj, node: Obj) -> bool:
    """`nodeSelector` and required node affinity (any of its terms) both match the node."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    terms = required_terms(spec)
    return terms is None or any(term_matches(t, node) for t in terms)


@functools.lru_cache(maxsize=1024)
def _requests(cpu: Any, memory: Any) -> tuple[int, int]:
    """Parsed once per distinct pair: the pods of one template all ask for the same."""
    try:
        return (quantity.cpu_millis(cpu) if cpu is not None else 0,
                quantity.bytes_value(memory) if memory is not None else 0)
    except (ValueError, TypeError):
        return 0, 0


def pod_requests(spec: Obj) -> tuple[int, int]:
    """(cpu millis, memory bytes) a pod asks for: its containers' sum, or its largest init container."""
    def of(c: Obj) -> tuple[int, int]:
        req = (c.get("resources") or {}).get("requests") or {}
        cpu, mem = req.get("cpu"), req.get("memory")
        if not isinstance(cpu, str | int | float | None) or not isinstance(mem, str | int | float | None):
            return 0, 0
        return _requests(cpu, mem)

    cpu = mem = 0
    for c in spec.get("containers") or []:
        a, b = of(c)
        cpu, mem = cpu + a, mem + b
    for c in spec.get("initContainers") or []:
        a, b = of(c)
        cpu, mem = max(cpu, a), max(mem, b)
    return cpu, mem


def host_ports(spec: Obj) -> set[tuple[str, str, int]]:
    """(protocol, hostIP, hostPort) the pod claims on its node."""
    ports = set()
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if isinstance(p, dict) and p.get("hostPort"):
                ports.add((str(p.get("protocol") or "TCP"), str(p.get("hostIP") or "0.0.0.0"), int(p["hostPort"])))
    return ports


def ports_conflict(want: set[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    for proto, ip, port in want:
        for uproto, uip, uport in used:
            if proto == uproto and port == uport and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


def allocatable(node: Obj) -> tuple[int, int, int]:
    """(cpu millis, memory bytes, pods) the node offers; capacity when allocatable is missing."""
    status = node.get("status") or {}
    res = status.get("allocatable") or status.get("capacity") or {}
    try:
        cpu = quantity.cpu_millis(res["cpu"]) if "cpu" in res else 0
        mem = quantity.bytes_value(res["memory"]) if "memory" in res else 0
        pods = int(quantity.parse_quantity(res["pods"])) if "pods" in res else DEFAULT_PODS
    except (ValueError, TypeError):
        return 0, 0, DEFAULT_PODS
    return cpu, mem, pods
