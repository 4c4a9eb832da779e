"""NoExecute taints enforced on the pods of a node (Kubernetes' taint eviction).

A pod that does not tolerate one of its node's NoExecute taints is deleted at
once; one that tolerates them for `tolerationSeconds` is deleted when the
earliest of those runs out (counted from each taint's `timeAdded`); one that
tolerates them for ever stays. As in Kubernetes (GetMatchingTolerations, then
getMinTolerationTime), each taint is judged by the *first* of the pod's
tolerations that tolerates it: a limited one listed before a blanket
`operator: Exists` sets the limit, which the blanket one does not lift (listed
the other way round, the blanket one counts and the pod stays).

On a node that is not Ready no agent will ever confirm a graceful deletion, so
pods there are deleted with grace 0 — pods already terminating on such a node
included — and their controllers can replace them elsewhere at once.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
from typing import Any

from core import errors
from core.kube import timefmt
from core.kube.scheduling import tolerates
from master.client import Client, Env
from master.controllers import podutil

Obj = dict[str, Any]
COMPONENT = "taint-eviction-controller"


def deadline(pod: Obj, taints: list[Obj], at: dt.datetime) -> dt.datetime | None:
    """When the pod must go: `at` if a taint is not tolerated, None if it may stay for ever."""
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    due: dt.datetime | None = None
    for taint in taints:
        used = next((t for t in tolerations if tolerates(t, taint)), None)
        if used is None:
            return at
        seconds = used.get("tolerationSeconds")
        if not isinstance(seconds, int):
            continue  # the toleration that counts has no limit: this taint is tolerated for ever
        added = timefmt.parse(taint.get("timeAdded")) or at
        when = added + dt.timedelta(seconds=max(seconds, 0))
        due = when if due is None or when < due else due
    return due


def enforce(env: Env, node: Obj, pods: list[Obj], gone: bool, at: dt.datetime) -> float | None:
    """Delete what must go by `at` (now); the seconds until the next pod must go, if any."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
    wait: float | None = None
    for pod in pods:
        if podutil.is_terminal(pod):
            continue  # not running: nothing to move
        m = podutil.meta(pod)
        if m.get("deletionTimestamp"):
            if gone:
                env.client.delete(env.kinds.pods, m["namespace"], m["name"], grace=0, uid=m["uid"])
            continue
        if not taints:
            continue
        due = deadline(pod, taints, at)
        if due is None:
            continue
        left = (due - at).total_seconds()
        if left > 0:
            wait = left if wait is None else min(wait, left)
            continue
        env.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {m['namespace']}/"
                           f"{m['name']}", COMPONENT)
        env.client.delete(env.kinds.pods, m["namespace"], m["name"], grace=0 if gone else None, uid=m["uid"])
    return None if wait is None else wait + 0.05


def mark_not_ready(client: Client, pod: Obj, at: dt.datetime) -> None:
    """Set a pod's Ready condition to False as of `at` (its node stopped reporting)."""
    if not podutil.is_ready(pod) or podutil.is_terminal(pod):
        return
    new = copy.deepcopy(pod)
    for c in (new.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            c.update({"status": "False", "lastTransitionTime": timefmt.rfc3339(at)})
    with contextlib.suppress(errors.Conflict, errors.NotFound):
        client.update_status(client.kinds.pods, new)
