"""Server-side table printing: the columns `kubectl get` shows against a real cluster.

kubectl asks for `as=Table` and prints what the server sends, so these column
definitions and cell functions mirror Kubernetes' own printers (priority 1
columns appear with `-o wide`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
Cell = Callable[[Obj, dt.datetime], Any]


@dataclass(frozen=True)
class Column:
    name: str
    cell: Cell
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description or self.name, "priority": self.priority}


@dataclass(frozen=True)
class TableDef:
    columns: tuple[Column, ...]


def human_duration(seconds: float) -> str:
    """Kubernetes' duration.HumanDuration: 45s, 3m20s, 5h, 3d4h, 2y."""
    s = round(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None, now: dt.datetime) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        t = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((now - t).total_seconds())


def name(obj: Obj, now: dt.datetime) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def age(obj: Obj, now: dt.datetime) -> str:
    return since(obj.get("metadata", {}).get("creationTimestamp"), now)


NAME = Column("Name", name, format="name", description="Name must be unique within a namespace.")
AGE = Column("Age", age, description="CreationTimestamp is a timestamp representing the server time "
             "when this object was created.")
DEFAULT = TableDef((NAME, Column("Created At", lambda o, n: o.get("metadata", {}).get("creationTimestamp"),
                                 type="date")))


def _get(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def containers_cell(spec_path: tuple[str, ...]) -> Cell:
    return lambda o, n: ",".join(str(c.get("name", "")) for c in _get(o, *spec_path, "containers") or [])


def images_cell(spec_path: tuple[str, ...]) -> Cell:
    return lambda o, n: ",".join(str(c.get("image", "")) for c in _get(o, *spec_path, "containers") or [])


def selector_cell(o: Obj, n: dt.datetime) -> str:
    sel = _get(o, "spec", "selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key} {op.lower()} ({','.join(sorted(values))})")
    return ",".join(parts) or "<none>"


def map_selector_cell(o: Obj, n: dt.datetime) -> str:
    sel = _get(o, "spec", "selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"


def workload_columns(spec_path: tuple[str, ...] = ("spec", "template", "spec")) -> tuple[Column, ...]:
    return (Column("Containers", containers_cell(spec_path), priority=1,
                   description="Names of each container in the template."),
            Column("Images", images_cell(spec_path), priority=1,
                   description="Images referenced by each container in the template."),
            Column("Selector", selector_cell, priority=1, description="Label selector for pods."))


def row_cells(table: TableDef, obj: Obj, now: dt.datetime) -> list[Any]:
    return [col.cell(obj, now) for col in table.columns]
