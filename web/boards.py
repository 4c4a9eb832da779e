"""Board cards: one Node plus the pods bound to it, reduced to what a glance at the page needs."""

from __future__ import annotations

import re
from typing import Any

from core.kube import quantity
from core.kube.scheduling import pod_requests
from web import boardfacts
from web.model import Board, Tone, Usage

Obj = dict[str, Any]
ROLE_PREFIX = "node-role.kubernetes.io/"
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def natural_key(name: str) -> list[Any]:
    """Sort pi-2 before pi-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def role(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = {k.removeprefix(ROLE_PREFIX) for k in labels if k.startswith(ROLE_PREFIX)}
    if roles & {"master", "control-plane"}:  # given by the master: a board cannot claim them (NodeRestriction)
        return "master"
    return sorted(roles)[0] if roles else "worker"


def address(node: Obj) -> str:
    addresses = (node.get("status") or {}).get("addresses") or []
    for kind in ("InternalIP", "ExternalIP", "Hostname"):
        for a in addresses:
            if isinstance(a, dict) and a.get("type") == kind and a.get("address"):
                return str(a["address"])
    return ""


def _conditions(node: Obj) -> dict[str, Obj]:
    return {str(c.get("type")): c for c in (node.get("status") or {}).get("conditions") or [] if isinstance(c, dict)}


def is_ready(node: Obj) -> bool:
    return _conditions(node).get("Ready", {}).get("status") == "True"


def _allocatable(node: Obj, name: str, parse: Any) -> int:
    status = node.get("status") or {}
    raw = (status.get("allocatable") or {}).get(name) or (status.get("capacity") or {}).get(name)
    try:
        return int(parse(raw)) if raw is not None else 0
    except (TypeError, ValueError):
        return 0


def board(node: Obj, pods: list[Obj]) -> Board:
    """The card of `node`; `pods` are the non-terminal pods bound to it."""
    meta = node.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    info = (node.get("status") or {}).get("nodeInfo") or {}
    conditions = _conditions(node)
    ready_cond = conditions.get("Ready", {})
    ready = ready_cond.get("status") == "True"
    cpu = mem = 0
    for pod in pods:
        c, m = pod_requests(pod.get("spec") or {})
        cpu, mem = cpu + c, mem + m
    temperature = boardfacts.temperature(annotations)
    throttling = boardfacts.throttling(annotations)
    pressure = [t for t in PRESSURES if conditions.get(t, {}).get("status") == "True"]
    schedulable = not (node.get("spec") or {}).get("unschedulable")
    tone = Tone.OK
    if not ready:
        tone = Tone.BAD
    elif (temperature and temperature["level"] != boardfacts.Level.OK) or any(f["now"] for f in throttling) \
            or pressure or not schedulable:
        tone = Tone.WARN
    return Board(
        name=str(meta.get("name", "")), role=role(node), ready="Ready" if ready else "NotReady",
        readyReason="" if ready else str(ready_cond.get("message") or ready_cond.get("reason") or "no status yet"),
        tone=tone.value, schedulable=schedulable, address=address(node), model=boardfacts.model(annotations),
        arch=str(labels.get("kubernetes.io/arch") or info.get("architecture") or ""),
        os=str(info.get("osImage") or ""), kernel=str(info.get("kernelVersion") or ""),
        kubelet=str(info.get("kubeletVersion") or ""), runtime=str(info.get("containerRuntimeVersion") or ""),
        created=str(meta.get("creationTimestamp") or ""), temperature=temperature, throttling=throttling,
        pressure=pressure,
        cpu=Usage(requested=cpu, allocatable=_allocatable(node, "cpu", quantity.cpu_millis)),
        memory=Usage(requested=mem, allocatable=_allocatable(node, "memory", quantity.bytes_value)),
        pods=len(pods), podCapacity=_allocatable(node, "pods", quantity.bytes_value),
    )


def boards(nodes: list[Obj], pods_by_node: dict[str, list[Obj]]) -> list[Board]:
    """Every board, masters first, then by name."""
    cards = [board(n, [p for p in pods_by_node.get((n.get("metadata") or {}).get("name", ""), [])
                       if not is_terminal(p)]) for n in nodes]
    return sorted(cards, key=lambda b: (b["role"] != "master", natural_key(b["name"])))
