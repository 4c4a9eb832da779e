"""A Deployment's status: replica counts summed over its ReplicaSets, and the Available/Progressing conditions.

`kubectl rollout status` waits on exactly these fields (observedGeneration,
updatedReplicas, replicas, availableReplicas) and fails on the Progressing
condition's `ProgressDeadlineExceeded`; a deployment that is still moving is
re-queued for the moment its deadline would pass, so a stuck rollout is
reported even when nothing else changes.
"""

from __future__ import annotations

import copy
from typing import Any

from core.kube.timefmt import now
from core.kube.timefmt import parse as parse_time
from master.client import obj_key
from master.controllers.deployment.rscontrol import RSControl
from master.controllers.deployment.util import (
    available,
    deadline,
    is_complete,
    is_progressing,
    make_condition,
    max_unavailable,
    remove_condition,
    replicas,
    set_condition,
    status_of,
)
from master.controllers.podutil import condition, meta

Obj = dict[str, Any]


def calculate(d: Obj, new_rs: Obj | None, old_sets: list[Obj]) -> Obj:
    sets = [*old_sets, *([new_rs] if new_rs is not None else [])]
    avail = sum(available(rs) for rs in sets)
    status: Obj = copy.deepcopy(d.get("status") or {})
    status.update({
        "observedGeneration": int(meta(d).get("generation") or 1),
        "replicas": sum(status_of(rs, "replicas") for rs in sets),
        "updatedReplicas": status_of(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in sets),
        "availableReplicas": avail,
        "unavailableReplicas": max(sum(replicas(rs) for rs in sets) - avail, 0),
    })
    for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
        if not status[field]:
            del status[field]
    if avail >= replicas(d) - max_unavailable(d):
        set_condition(status, make_condition("Available", "True", "MinimumReplicasAvailable",
                                             "Deployment has minimum availability."))
    else:
        set_condition(status, make_condition("Available", "False", "MinimumReplicasUnavailable",
                                             "Deployment does not have minimum availability."))
    return status


def sync_status(rsc: RSControl, d: Obj, new_rs: Obj | None, old_sets: list[Obj]) -> None:
    """Counts and Available only (deleting, paused or scaling deployments)."""
    status = calculate(d, new_rs, old_sets)
    if status != (d.get("status") or {}):
        rsc.write_status({**d, "status": status})


def sync_rollout(rsc: RSControl, d: Obj, new_rs: Obj | None, old_sets: list[Obj]) -> None:
    """Counts, Available, and Progressing with the progress deadline."""
    status = calculate(d, new_rs, old_sets)
    limit = deadline(d)
    if limit is None:
        remove_condition(status, "Progressing")
    current = condition({"status": status}, "Progressing")
    complete_before = status.get("replicas") == status.get("updatedReplicas") and current is not None and \
        current.get("reason") == "NewReplicaSetAvailable"
    what = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs is not None else f'Deployment "{meta(d)["name"]}"'
    if limit is not None and not complete_before:
        if is_complete(d, status):
            set_condition(status, make_condition("Progressing", "True", "NewReplicaSetAvailable",
                                                 f"{what} has successfully progressed."))
        elif is_progressing(d, status):
            cond = make_condition("Progressing", "True", "ReplicaSetUpdated", f"{what} is progressing.")
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, "Progressing")
            set_condition(status, cond)
        elif _timed_out(current, limit):
            set_condition(status, make_condition("Progressing", "False", "ProgressDeadlineExceeded",
                                                 f"{what} has timed out progressing."))
    if status != (d.get("status") or {}):
        rsc.write_status({**d, "status": status})
    _requeue_stuck(rsc, d, status, limit)


def _timed_out(cond: Obj | None, limit: int) -> bool:
    if cond is None:
        return False
    if cond.get("reason") == "ProgressDeadlineExceeded":
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and (now() - since).total_seconds() > limit


def _requeue_stuck(rsc: RSControl, d: Obj, status: Obj, limit: int | None) -> None:
    cond = condition({"status": status}, "Progressing")
    if limit is None or cond is None or cond.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
        return
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return
    left = limit - (now() - since).total_seconds()
    rsc.requeue_after(obj_key(d), max(left, 0.0) + 1.0)
