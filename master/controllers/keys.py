"""Which key an object is filed under: by namespace (the informers' common index) and by the owner that controls it.

Controllers enqueue the key of the owner when a pod or ReplicaSet changes, so
every controller that owns things (ReplicaSet, Deployment, DaemonSet, Job,
endpoints) asks the same two questions the same way.
"""

from __future__ import annotations

from typing import Any

from master.controllers import podutil

Obj = dict[str, Any]


def by_namespace(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace", ""))]


def owner_key(obj: Obj, kind: str) -> str | None:
    """`ns/name` of the object of `kind` that controls `obj`, if any."""
    ref = podutil.controller_of(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    return f"{podutil.meta(obj).get('namespace', '')}/{ref.get('name', '')}"
