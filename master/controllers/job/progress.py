"""The arithmetic of a Job: counting its pods, deciding whether it is done, and the status to write.

Pure functions of (job, pods, time), so the decisions — completions reached,
backoff limit passed, deadline exceeded, how long to wait before replacing a
failed pod — can be tested without a cluster.

Each finished pod is counted exactly once, as Kubernetes does it (job tracking
with finalizers). The pods a Job creates or adopts carry the
`batch.kubernetes.io/job-tracking` finalizer, so none can disappear — `kubectl
delete pod`, a lost node, the Job's own TTL — before the controller counted it:
the API server keeps a deleted pod with finalizers, with a deletionTimestamp,
until the last one is removed (`master/registry/verbs.py`). A pod that still
carries the finalizer and has finished, or is being deleted before it finished
(a failure, as Kubernetes counts it), is counted in three steps, each safe to
be cut short by a crash or a failed write:

1. its uid is added to `status.uncountedTerminatedPods` (that status is written
   before anything else);
2. its finalizer is removed (the pod may go now);
3. the uids listed there whose pods no longer carry the finalizer (or are gone)
   move into `status.succeeded` / `status.failed`.

A uid already listed is never listed again, and a listed uid is counted as soon
as its pod no longer holds the finalizer, so `succeeded` and `failed` are the
status's counts plus the uncounted uids, whatever pods are left. A pod cache
that lags the controller's own finalizer removals is covered by the removals
it still expects (`expectations.UidExpectations`): such a pod counts as
untracked. A pod without the finalizer is never counted: it was counted
already, or the controller stopped tracking it. The controller removes the
finalizer itself before it deletes a pod (surplus, a suspended Job, a finished
Job's pods), so the pods it stops are not failures, as Kubernetes'
`deleteJobPods` does for surplus and suspended pods. (Kubernetes does count
the pods a *failing* Job stops as failed; pikube does not.) Counting the
finished pods present instead (the max of them and the status) loses every
success and failure of a pod that is gone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from core.kube import timefmt
from master.controllers import podutil

Obj = dict[str, Any]
MAX_BACKOFF = 360.0  # Kubernetes caps the pod failure back-off at 6 minutes
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
Verdict = tuple[str, str, str]  # (condition type, reason, message)


def finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def suspended(job: Obj) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def resuming(job: Obj) -> bool:
    """Suspended until now: its `startTime` is reset by this sync, so the time suspended is no active time."""
    cond = podutil.condition(job, "Suspended")
    return not suspended(job) and cond is not None and cond.get("status") == "True"


def tracked(pod: Obj) -> bool:
    """Whether the pod carries the tracking finalizer: its end, if it ends, is not counted yet."""
    return TRACKING_FINALIZER in (podutil.meta(pod).get("finalizers") or [])


def finish_time(job: Obj) -> dt.datetime | None:
    status = job.get("status") or {}
    if status.get("completionTime"):
        return timefmt.parse(status["completionTime"])
    failed = podutil.condition(job, "Failed")
    return timefmt.parse(failed.get("lastTransitionTime")) if failed else None


def _finished_at(pod: Obj) -> dt.datetime:
    latest: dt.datetime | None = None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = timefmt.parse(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is not None and (latest is None or t > latest):
            latest = t
    return latest or timefmt.parse(podutil.meta(pod).get("creationTimestamp")) or timefmt.now()


def backoff_left(failed: list[Obj], base: float, at: dt.datetime) -> float:
    """Seconds to wait before replacing failed pods: `base` doubled per failure since the last one."""
    if not failed or base <= 0:
        return 0.0
    last = max(_finished_at(p) for p in failed)
    delay = min(base * 2 ** (len(failed) - 1), MAX_BACKOFF)
    return max((last + dt.timedelta(seconds=delay) - at).total_seconds(), 0.0)


@dataclass
class Uncounted:
    """`status.uncountedTerminatedPods`: uids of finished pods not yet in `succeeded` / `failed`."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, job: Obj) -> Uncounted:
        doc = (job.get("status") or {}).get("uncountedTerminatedPods") or {}
        return cls([str(u) for u in doc.get("succeeded") or []], [str(u) for u in doc.get("failed") or []])

    def add(self, uid: str, succeeded: bool) -> None:
        if uid not in self.succeeded and uid not in self.failed:
            (self.succeeded if succeeded else self.failed).append(uid)

    def keep(self, carrying: set[str]) -> None:
        """Step 3: drop the uids whose pods no longer carry the finalizer (the caller counts them)."""
        self.succeeded = [u for u in self.succeeded if u in carrying]
        self.failed = [u for u in self.failed if u in carrying]

    def doc(self) -> Obj:
        return {k: v for k, v in (("succeeded", self.succeeded), ("failed", self.failed)) if v}

    def __bool__(self) -> bool:
        return bool(self.succeeded or self.failed)


@dataclass
class Counts:
    active: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)  # Failed pods still there: the back-off is timed from them
    succeeded: int = 0  # the status's count plus the uncounted uids
    failures: int = 0  # likewise
    ready: int = 0
    restarts: int = 0
    uncounted: Uncounted = field(default_factory=Uncounted)  # the status's, plus this sync's new ones
    untrack: list[Obj] = field(default_factory=list)  # pods whose finalizer this sync removes
    carrying: set[str] = field(default_factory=set)  # uids of the pods that still carry the finalizer

    def wanted(self, job: Obj) -> int:
        spec = job.get("spec") or {}
        if suspended(job):
            return 0
        parallelism = int(spec.get("parallelism", 1) or 0) if spec.get("parallelism") is not None else 1
        completions = spec.get("completions")
        if completions is None:
            return len(self.active) if self.succeeded else parallelism
        return max(min(parallelism, int(completions) - self.succeeded), 0)

    def deadline_left(self, job: Obj, deadline: int, at: dt.datetime) -> float:
        start = None if resuming(job) else timefmt.parse((job.get("status") or {}).get("startTime"))
        start = start or at
        return max((start + dt.timedelta(seconds=deadline) - at).total_seconds(), 0.0)

    def verdict(self, job: Obj, at: dt.datetime) -> Verdict | None:
        spec = job.get("spec") or {}
        limit = int(spec.get("backoffLimit") or 0) if spec.get("backoffLimit") is not None else 6
        on_failure = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure"
        if self.failures > limit or (on_failure and self.restarts > 0 and self.restarts >= max(limit, 1)):
            return "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int) and not suspended(job) and self.deadline_left(job, deadline, at) <= 0:
            return "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
        completions = spec.get("completions")
        if (completions is not None and self.succeeded >= int(completions)) or \
                (completions is None and self.succeeded > 0 and not self.active):
            return "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
        return None


def counts(job: Obj, pods: list[Obj], removing: frozenset[str] = frozenset()) -> Counts:
    """The Job's pods sorted out; `removing`: uids whose finalizer removal the pod cache has yet to show."""
    status = job.get("status") or {}
    c = Counts(uncounted=Uncounted.of(job))
    job_deleting = bool(podutil.meta(job).get("deletionTimestamp"))
    for pod in pods:
        m = podutil.meta(pod)
        uid = str(m.get("uid") or "")
        mine = tracked(pod) and uid not in removing
        if mine:
            c.carrying.add(uid)
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            c.failed.append(pod)
        elif phase != "Succeeded" and not m.get("deletionTimestamp"):
            c.active.append(pod)
            c.ready += 1 if podutil.is_ready(pod) else 0
            c.restarts += podutil.restarts(pod)
            if mine and job_deleting:
                c.untrack.append(pod)  # a Job being deleted lets all its pods go
            continue
        if mine:  # finished, or deleted before it finished (a failure)
            c.untrack.append(pod)
            c.uncounted.add(uid, succeeded=phase == "Succeeded")
    c.succeeded = int(status.get("succeeded") or 0) + len(c.uncounted.succeeded)
    c.failures = int(status.get("failed") or 0) + len(c.uncounted.failed)
    return c


def set_condition(conditions: list[Obj], kind: str, status: str, reason: str, message: str, stamp: str) -> bool:
    """Kubernetes' ensureJobConditionStatus: update or add the condition; a False one is never added. Changed?"""
    for cond in conditions:
        if cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (status, reason, message):
                return False
            cond.update({"status": status, "reason": reason, "message": message, "lastProbeTime": stamp,
                         "lastTransitionTime": stamp})
            return True
    if status == "False":
        return False
    conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "lastProbeTime": stamp, "lastTransitionTime": stamp})
    return True


def make_status(job: Obj, c: Counts, verdict: Verdict | None, active: int, ready: int, managed: bool) -> Obj:
    """The status after this sync: `active` and `ready` count the pods after its creations and deletions.

    `managed`: the sync compared the pods with what the Job wants (its expectations were met), so it may
    say whether the Job is suspended, as Kubernetes only does then. A resumed Job starts its clock again
    (`startTime`, which activeDeadlineSeconds counts from); a Job created suspended starts it on resuming.
    """
    old = job.get("status") or {}
    stamp = timefmt.rfc3339(timefmt.now())
    start = old.get("startTime")
    conditions = [dict(cond) for cond in old.get("conditions") or []]
    if verdict is None and managed:
        if suspended(job):
            set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", stamp)
        elif set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", stamp):
            start = stamp
    if not start and not suspended(job):
        start = stamp
    status: Obj = {"startTime": start} if start else {}
    status.update({"ready": 0 if verdict else ready, "uncountedTerminatedPods": c.uncounted.doc()})
    if active and verdict is None:
        status["active"] = active
    succeeded = c.succeeded - len(c.uncounted.succeeded)
    failed = c.failures - len(c.uncounted.failed)
    if succeeded:
        status["succeeded"] = succeeded
    if failed:
        status["failed"] = failed
    if verdict is not None:
        kind, reason, message = verdict
        first = "SuccessCriteriaMet" if kind == "Complete" else "FailureTarget"
        for t in (first, kind):
            conditions.append({"type": t, "status": "True", "reason": reason, "message": message,
                               "lastProbeTime": stamp, "lastTransitionTime": stamp})
        if kind == "Complete":
            status["completionTime"] = stamp
    if conditions:
        status["conditions"] = conditions
    return status
