"""Pure helpers of the Deployment controller: template hashes, revisions, surge/unavailable counts, conditions.

These decide nothing by themselves; `deployment.py` and `rollout.py` compose
them. The annotation names and condition reasons are Kubernetes' own, because
`kubectl rollout status|history|undo` read them.
"""

from __future__ import annotations

import copy
from typing import Any

from core.kube import intstr
from core.kube.timefmt import now, rfc3339
from master.controllers.podutil import condition, meta
from master.controllers.templatehash import semantic

Obj = dict[str, Any]
COMPONENT = "deployment-controller"

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
               MAX_REPLICAS, "deprecated.deployment.rollback.to"}


def without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return bool(semantic(without_hash(a)) == semantic(without_hash(b)))


def replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas") or 0)


def status_of(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def available(rs: Obj) -> int:
    """Available pods of a ReplicaSet, never more than it is asked to keep (its status may lag a scale-down)."""
    return min(status_of(rs, "availableReplicas"), replicas(rs))


def revision(rs: Obj) -> int:
    try:
        return int((meta(rs).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(sets: list[Obj]) -> int:
    return max((revision(rs) for rs in sets), default=0)


def is_rolling(d: Obj) -> bool:
    kind = ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate")
    return bool(kind == "RollingUpdate")


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; (0, 0) for Recreate."""
    if not is_rolling(d):
        return 0, 0
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge, unavailable = intstr.resolve_fenceposts(ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%"),
                                                   replicas(d))
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0]


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(fenceposts(d)[1], replicas(d))


def new_rs_replicas(d: Obj, all_sets: list[Obj], new_rs: Obj) -> int:
    """How many replicas the new ReplicaSet may have now (Kubernetes' NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    current = sum(replicas(rs) for rs in all_sets)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    return replicas(new_rs) + min(max_total - current, replicas(d) - replicas(new_rs))


def copy_annotations(d: Obj, rs: Obj) -> bool:
    """Copy the deployment's annotations (change-cause …) onto its ReplicaSet; True if any changed."""
    target = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in (meta(d).get("annotations") or {}).items():
        if k not in _NOT_COPIED and target.get(k) != v:
            target[k] = v
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    changed = copy_annotations(d, rs)
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    old = revision(rs)
    if old < new_revision:
        if old:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join([*history, str(old)])
        annotations[REVISION] = str(new_revision)
        changed = True
    if not exists:
        changed = set_replica_annotations(d, rs) or changed
    return changed


def set_replica_annotations(d: Obj, rs: Obj) -> bool:
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    want = {DESIRED_REPLICAS: str(replicas(d)), MAX_REPLICAS: str(replicas(d) + max_surge(d))}
    if all(annotations.get(k) == v for k, v in want.items()):
        return False
    annotations.update(want)
    return True


def make_condition(kind: str, status: str, reason: str, message: str) -> Obj:
    stamp = rfc3339(now())
    return {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Kubernetes' SetDeploymentCondition: same status and reason leaves it alone."""
    current = condition({"status": status}, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


def is_complete(d: Obj, status: Obj) -> bool:
    """All replicas updated and available, and no old ones left (DeploymentComplete)."""
    want = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 1))


def is_progressing(d: Obj, new: Obj) -> bool:
    old = d.get("status") or {}
    old_old = int(old.get("replicas") or 0) - int(old.get("updatedReplicas") or 0)
    new_old = int(new.get("replicas") or 0) - int(new.get("updatedReplicas") or 0)
    return (int(new.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0) or new_old < old_old
            or int(new.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
            or int(new.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0))


def deadline(d: Obj) -> int | None:
    value = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return int(value) if isinstance(value, int) and value < 2**31 - 1 else None
