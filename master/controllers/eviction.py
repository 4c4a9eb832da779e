"""NoExecute taints enforced on the pods of a node (Kubernetes' taint eviction).

A pod that does not tolerate one of its node's NoExecute taints is deleted at
once; one that tolerates them for `tolerationSeconds` is deleted when the
earliest of those runs out (counted from each taint's `timeAdded`); one that
tolerates them for ever stays. On a node that is not Ready no agent will ever
confirm a graceful deletion, so pods there are deleted with grace 0 — pods
already terminating on such a node included — and their controllers can
replace them elsewhere at once.
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
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return at
        seconds = [int(t["tolerationSeconds"]) for t in matching if isinstance(t.get("tolerationSeconds"), int)]
        if len(seconds) < len(matching):
            continue  # one toleration has no limit: this taint is tolerated for ever
        added = timefmt.parse(taint.get("timeAdded")) or at
        when = added + dt.timedelta(seconds=max(min(seconds), 0))
        due = when if due is None or when < due else due
    return due


def enforce(env: Env, node: Obj, pods: list[Obj], gone: bool) -> float | None:
    """Delete what must go now; the seconds until the next pod must go, if any."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
    at = timefmt.now()
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


def mark_not_ready(client: Client, pod: Obj) -> None:
    """Set a pod's Ready condition to False (its node stopped reporting)."""
    if not podutil.is_ready(pod) or podutil.is_terminal(pod):
        return
    new = copy.deepcopy(pod)
    for c in (new.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            c.update({"status": "False", "lastTransitionTime": timefmt.rfc3339(timefmt.now())})
    with contextlib.suppress(errors.Conflict, errors.NotFound):
        client.update_status(client.kinds.pods, new)
