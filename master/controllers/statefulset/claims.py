"""A StatefulSet's claims: one per claim template and ordinal, and who owns each (the retention policy).

The claim of template `data` for pod `web-1` is `data-web-1`: the template
with the set's selector labels added, made before the pod and never changed
after. Its owner references say what garbage collection does with it, as
Kubernetes sets them (controller references, so the set or pod is *the* owner):

    whenScaled  whenDeleted   pod in range          pod scaled away
    Retain      Retain        nobody                nobody
    Retain      Delete        the set               the set
    Delete      Retain        nobody                the pod
    Delete      Delete        the set               the pod (not the set)

A claim that names another controller, or an earlier set or pod of the same
name (a different uid), is left alone. A claim still owned by an earlier pod
of its ordinal (scaled away and not yet collected) is stale: the pod is not
made again until it is gone, or the new pod would mount a claim about to go.
"""

from __future__ import annotations

import copy
from typing import Any

from master.controllers import podutil

Obj = dict[str, Any]
SET_KIND = ("apps/v1", "StatefulSet")
POD_KIND = ("v1", "Pod")
RETAIN, DELETE = "Retain", "Delete"


def name(template: Obj, set_name: str, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name')}-{set_name}-{ordinal}"


def body(sts: Obj, template: Obj, ordinal: int) -> Obj:
    """The claim a set makes from one of its templates for one ordinal."""
    spec = sts.get("spec") or {}
    tmeta = template.get("metadata") or {}
    labels = {**(tmeta.get("labels") or {}), **((spec.get("selector") or {}).get("matchLabels") or {})}
    meta: Obj = {"name": name(template, str(podutil.meta(sts)["name"]), ordinal), "labels": labels}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def policy(sts: Obj) -> tuple[str, str]:
    """(whenScaled, whenDeleted), Retain where unset."""
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(p.get("whenScaled") or RETAIN), str(p.get("whenDeleted") or RETAIN)


def _refs(claim: Obj) -> list[Obj]:
    return [r for r in podutil.meta(claim).get("ownerReferences") or [] if isinstance(r, dict)]


def _matches(ref: Obj, obj: Obj, kind: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind")) == kind and ref.get("name") == podutil.meta(obj).get("name")


def _has(claim: Obj, obj: Obj) -> bool:
    uid = podutil.meta(obj).get("uid")
    return bool(uid) and any(r.get("uid") == uid for r in _refs(claim))


def _stale_ref(claim: Obj, obj: Obj, kind: tuple[str, str]) -> bool:
    for ref in _refs(claim):
        if _matches(ref, obj, kind):
            return bool(ref.get("uid") != podutil.meta(obj).get("uid"))
    return False


def is_stale(claim: Obj, pod: Obj) -> bool:
    """The claim names an earlier pod of this name (or any, for a pod not made yet)."""
    return _stale_ref(claim, pod, POD_KIND)


def _unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    if policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in _refs(claim):
        for obj, kind in ((sts, SET_KIND), (pod, POD_KIND)):
            if _matches(ref, obj, kind):
                if ref.get("uid") != podutil.meta(obj).get("uid"):
                    return True
                break
        else:
            if ref.get("controller"):
                return True
    return False


def _wanted(sts: Obj, scaled_down: bool) -> tuple[bool, bool]:
    """(the set owns it, the pod owns it) under the set's policy."""
    when_scaled, when_deleted = policy(sts)
    if when_scaled == DELETE and scaled_down:
        return False, True
    return when_deleted == DELETE, False


def up_to_date(claim: Obj, sts: Obj, pod: Obj, scaled_down: bool) -> bool:
    if _stale_ref(claim, sts, SET_KIND) or _stale_ref(claim, pod, POD_KIND):
        return True  # managed by an earlier set or pod of this name: not ours to touch
    if _unexpected_controller(claim, sts, pod):
        return not (_has(claim, sts) or _has(claim, pod))
    uids = {podutil.meta(sts).get("uid"), podutil.meta(pod).get("uid")} - {None, ""}
    if any(r.get("uid") in uids and not r.get("controller") for r in _refs(claim)):
        return False
    return (_has(claim, sts), _has(claim, pod)) == _wanted(sts, scaled_down)


def owners(claim: Obj, sts: Obj, pod: Obj, scaled_down: bool) -> list[Obj]:
    """The claim's owner references as the policy wants them (others' references kept)."""
    unexpected = _unexpected_controller(claim, sts, pod)
    refs = [r for r in _refs(claim) if not (_matches(r, sts, SET_KIND) or _matches(r, pod, POD_KIND))]
    if unexpected:
        return refs
    by_set, by_pod = _wanted(sts, scaled_down)
    if by_set:
        refs.append(podutil.owner_ref(sts, *SET_KIND))
    if by_pod and podutil.meta(pod).get("uid"):
        refs.append(podutil.owner_ref(pod, *POD_KIND))
    return refs
