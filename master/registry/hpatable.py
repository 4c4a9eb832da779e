"""`kubectl get hpa`'s columns, as Kubernetes' printer makes them (NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE).

TARGETS pairs each metric of the spec with the current value at the same index of
the status (`cpu: 42%/50%`, `<unknown>` before the first measurement), at most
three of them and then `+ N more...`. Tables are made from the object in the
version the client asked for, so a v1 object is read through its v2 form.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from master.registry.hpaversions import V1, HpaConversion
from master.registry.tables import AGE, NAME, Column, TableDef

Obj = dict[str, Any]
_MAX_SHOWN = 3


def _v2(o: Obj) -> Obj:
    """The v2 form: a stored v2 object always has `spec.metrics` (defaulting), a v1 one never has.

    (List items carry no apiVersion, so the shape decides.)"""
    if o.get("apiVersion") == V1 or "metrics" not in (o.get("spec") or {}):
        return HpaConversion().to_storage(o)
    return o


def _quantity(value: Any) -> str:
    return "<unknown>" if value is None else str(value)


def _current(status: Obj | None, field: str) -> Obj:
    return ((status or {}).get(field) or {}).get("current") or {}


def _one(spec: Obj, status: Obj | None) -> str:
    kind = spec.get("type")
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        src = spec.get(field) or {}
        target = src.get("target") or {}
        current = _current(status, field)
        prefix = f"{src.get('name')}: " if kind == "Resource" else f"{src.get('name')} ({src.get('container')}): "
        if target.get("averageValue") is not None:
            return f"{prefix}{_quantity(current.get('averageValue'))}/{target['averageValue']}"
        shown = "<unknown>" if current.get("averageUtilization") is None else f"{current['averageUtilization']}%"
        return f"{prefix}{shown}/{target.get('averageUtilization')}%"
    if kind in ("Pods", "Object", "External"):
        field = kind.lower()
        src = spec.get(field) or {}
        target = src.get("target") or {}
        current = _current(status, field)
        name = (src.get("metric") or {}).get("name")
        if target.get("averageValue") is not None:
            avg = "" if kind == "Pods" else " (avg)"
            return f"{name}: {_quantity(current.get('averageValue'))}/{target['averageValue']}{avg}"
        return f"{name}: {_quantity(current.get('value'))}/{target.get('value')}"
    return "<unknown type>"


def targets(o: Obj, now: dt.datetime) -> str:
    obj = _v2(o)
    specs = (obj.get("spec") or {}).get("metrics") or []
    statuses = (obj.get("status") or {}).get("currentMetrics") or []
    if not specs:
        return "<none>"
    cells = [_one(m, statuses[i] if i < len(statuses) else None) for i, m in enumerate(specs[:_MAX_SHOWN])]
    text = ", ".join(cells)
    if len(specs) > _MAX_SHOWN:
        text += f" + {len(specs) - _MAX_SHOWN} more..."
    return text


def reference(o: Obj, now: dt.datetime) -> str:
    ref = (o.get("spec") or {}).get("scaleTargetRef") or {}
    return f"{ref.get('kind')}/{ref.get('name')}"


def _min_pods(o: Obj, now: dt.datetime) -> Any:
    low = (o.get("spec") or {}).get("minReplicas")
    return "<unset>" if low is None else low


HPA = TableDef((
    NAME,
    Column("Reference", reference, description="The target resource this autoscaler scales."),
    Column("Targets", targets, description="The current and target values of the metrics."),
    Column("MinPods", _min_pods, description="The lower limit for the number of pods."),
    Column("MaxPods", lambda o, n: (o.get("spec") or {}).get("maxReplicas"), type="integer",
           description="The upper limit for the number of pods."),
    Column("Replicas", lambda o, n: int((o.get("status") or {}).get("currentReplicas") or 0), type="integer",
           description="The current number of replicas."),
    AGE,
))
