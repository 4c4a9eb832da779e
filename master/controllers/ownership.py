"""Adopting and releasing dependents through `ownerReferences` (client-go's ControllerRefManager).

A controller owns the objects whose controller reference names it. An orphan
that matches its selector is adopted (unless the owner is being deleted); an
owned object that no longer matches is released. Both are patches guarded by
the dependent's resourceVersion, so a concurrent change makes them fail and
the sync is retried rather than clobbering someone else's write. A controller
that tracks its dependents with a finalizer (the Job controller's
`batch.kubernetes.io/job-tracking`) names it: adopting adds it, releasing
removes it, in the same patch (client-go's PodControllerRefManager does so).
"""

from __future__ import annotations

import contextlib
from typing import Any

from core import errors
from core.kube.selectors import LabelSelector
from master.client import Client
from master.controllers.podutil import controller_of, meta, owner_ref
from master.registry.resource import ResourceType

Obj = dict[str, Any]


def claim(client: Client, rt: ResourceType, owner_rt: ResourceType, owner: Obj, candidates: list[Obj],
          selector: LabelSelector, finalizer: str = "") -> list[Obj]:
    """The candidates (of type `rt`) `owner` controls, after adopting matching orphans and releasing strays.

    With `finalizer`, adopted objects get it and released ones lose it.
    """
    uid = meta(owner).get("uid")
    deleting = bool(meta(owner).get("deletionTimestamp"))
    owned: list[Obj] = []
    fresh_checked = False
    for obj in candidates:
        ref = controller_of(obj)
        labels = meta(obj).get("labels") or {}
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if selector.matches(labels) or deleting:
                owned.append(obj)
            else:
                _release(client, rt, obj, str(uid), finalizer)
            continue
        if deleting or not selector.matches(labels) or meta(obj).get("deletionTimestamp"):
            continue
        if not fresh_checked:
            live = client.get(owner_rt, meta(owner).get("namespace", ""), meta(owner)["name"])
            if live is None or meta(live).get("uid") != uid or meta(live).get("deletionTimestamp"):
                return owned
            fresh_checked = True
        adopted = _adopt(client, rt, obj, owner_ref(owner, owner_rt.api_version, owner_rt.kind), finalizer)
        if adopted is not None:
            owned.append(adopted)
    return owned


def _adopt(client: Client, rt: ResourceType, obj: Obj, ref: Obj, finalizer: str) -> Obj | None:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if isinstance(r, dict) and r.get("uid") != ref["uid"]]
    patch: Obj = {"ownerReferences": [*refs, ref], "resourceVersion": m.get("resourceVersion")}
    finalizers = list(m.get("finalizers") or [])
    if finalizer and finalizer not in finalizers:
        patch["finalizers"] = [*finalizers, finalizer]
    try:
        return client.patch(rt, m.get("namespace", ""), m["name"], {"metadata": patch})
    except errors.NotFound:
        return None


def _release(client: Client, rt: ResourceType, obj: Obj, uid: str, finalizer: str) -> None:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if isinstance(r, dict) and r.get("uid") != uid]
    patch: Obj = {"ownerReferences": refs or None, "resourceVersion": m.get("resourceVersion")}
    finalizers = list(m.get("finalizers") or [])
    if finalizer and finalizer in finalizers:
        patch["finalizers"] = [f for f in finalizers if f != finalizer] or None
    with contextlib.suppress(errors.NotFound):
        client.patch(rt, m.get("namespace", ""), m["name"], {"metadata": patch})
