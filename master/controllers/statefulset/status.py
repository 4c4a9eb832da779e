"""A StatefulSet's status, counted as Kubernetes counts it.

`replicas` counts every pod of the set (terminating ones too), `readyReplicas`
those Running and Ready, `availableReplicas` those Ready for `minReadySeconds`;
`currentReplicas` and `updatedReplicas` count the pods not being deleted at
the current and the update revision. A `RollingUpdate` is complete once every
pod runs the update revision and is ready: `currentRevision` then becomes the
update revision. (An `OnDelete` set keeps its current revision, as in Kubernetes.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from master.controllers import podutil

Obj = dict[str, Any]
REVISION_LABEL = "controller-revision-hash"


def running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and podutil.is_ready(pod)


def healthy(pod: Obj) -> bool:
    return running_and_ready(pod) and not podutil.meta(pod).get("deletionTimestamp")


def available(pod: Obj, min_ready_seconds: int, at: dt.datetime | None = None) -> bool:
    return running_and_ready(pod) and podutil.is_available(pod, min_ready_seconds, at)


def revision_of(pod: Obj) -> str:
    return str((podutil.meta(pod).get("labels") or {}).get(REVISION_LABEL) or "")


def compute(sts: Obj, pods: list[Obj], current: str, update: str, collisions: int, at: dt.datetime) -> Obj:
    spec = sts.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    live = [p for p in pods if not podutil.meta(p).get("deletionTimestamp")]
    status: Obj = {
        "observedGeneration": podutil.meta(sts).get("generation", 1),
        "replicas": len(pods),
        "readyReplicas": sum(1 for p in pods if running_and_ready(p)),
        "availableReplicas": sum(1 for p in pods if available(p, min_ready, at)),
        "currentReplicas": sum(1 for p in live if revision_of(p) == current),
        "updatedReplicas": sum(1 for p in live if revision_of(p) == update),
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": collisions,
    }
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if rolling and status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]:
        status["currentReplicas"], status["currentRevision"] = status["updatedReplicas"], update
    # Go leaves out the zero counts and empty names it marks omitempty.
    return {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount")}
