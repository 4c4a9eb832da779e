"""Recent events, warnings first: what went wrong lately, in the cluster's own words."""

from __future__ import annotations

from typing import Any

from web.model import Event

Obj = dict[str, Any]
RECENT = 30
MAX_MESSAGE = 300


def _last(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return str(obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("firstTimestamp")
               or meta.get("creationTimestamp") or "")


def event(obj: Obj) -> Event:
    inv = obj.get("involvedObject") or obj.get("regarding") or {}
    message = str(obj.get("message") or obj.get("note") or "")
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 1] + "…"
    count = obj.get("count")
    return Event(type=str(obj.get("type") or "Normal"), reason=str(obj.get("reason") or ""),
                 object=f"{inv.get('kind') or ''}/{inv.get('name') or ''}",
                 namespace=str((obj.get("metadata") or {}).get("namespace") or ""), message=message,
                 count=count if isinstance(count, int) and count > 0 else 1, last=_last(obj))


def recent(objs: list[Obj], limit: int = RECENT) -> list[Event]:
    """The `limit` newest events, then warnings before normal ones, newest first within each."""
    newest = sorted(objs, key=_last, reverse=True)[:limit]
    rows = [event(o) for o in newest]
    return sorted(rows, key=lambda e: e["type"] != "Warning")  # stable: keeps newest-first order
