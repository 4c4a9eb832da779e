"""Small pure facts about pods and owners that several controllers need.

Whether a pod is active, ready or available; which object controls another
(its `ownerReferences` entry with `controller: true`); a new pod stamped out
of a template; and the order in which a controller deletes surplus pods
(Kubernetes' ActivePods ranking: unscheduled, pending, not ready, newest first).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from typing import Any

from core.kube import timefmt
from core.kube.selectors import LabelSelector

Obj = dict[str, Any]
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def meta(obj: Obj) -> Obj:
    m: Obj = obj.get("metadata") or {}
    return m


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Not finished and not being deleted: counts towards a controller's replicas."""
    return not is_terminal(pod) and not meta(pod).get("deletionTimestamp")


def condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, at: dt.datetime | None = None) -> bool:
    """Ready for at least `min_ready_seconds`."""
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = timefmt.parse(c.get("lastTransitionTime"))
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) <= (at or timefmt.now())


def controller_of(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def controller_uid(obj: Obj) -> str:
    ref = controller_of(obj)
    return str(ref.get("uid", "")) if ref else ""


def owner_ref(owner: Obj, api_version: str, kind: str) -> Obj:
    m = meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": m["name"], "uid": m["uid"], "controller": True,
            "blockOwnerDeletion": True}


def pod_from_template(template: Obj, owner: Obj, api_version: str, kind: str, generate_name: str,
                      extra_labels: dict[str, str] | None = None) -> Obj:
    """A new pod for `owner`, as its controller creates it (template labels, annotations, spec)."""
    t = copy.deepcopy(template)
    tm = t.get("metadata") or {}
    labels = dict(tm.get("labels") or {})
    labels.update(extra_labels or {})
    pod_meta: Obj = {"generateName": generate_name, "namespace": meta(owner).get("namespace", ""),
                     "labels": labels, "ownerReferences": [owner_ref(owner, api_version, kind)]}
    if tm.get("annotations"):
        pod_meta["annotations"] = dict(tm["annotations"])
    if tm.get("finalizers"):
        pod_meta["finalizers"] = list(tm["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": t.get("spec") or {}}


def restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []
               if isinstance(c, dict))


def deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key: pods a controller should delete first come first."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready = condition(pod, "Ready")
    ready_since = (ready or {}).get("lastTransitionTime") or "" if is_ready(pod) else ""
    created = meta(pod).get("creationTimestamp") or ""
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(status.get("phase", "Pending"), 0),
        1 if is_ready(pod) else 0,
        _negate(ready_since),  # ready for a shorter time first
        -restarts(pod),
        _negate(created),  # newer first
    )


def _negate(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


def selector(doc: Obj | None) -> LabelSelector:
    """A `metav1.LabelSelector` parsed once per distinct selector (event handlers match often)."""
    return _parse_selector(json.dumps(doc or {}, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _parse_selector(text: str) -> LabelSelector:
    return LabelSelector.from_dict(json.loads(text))
