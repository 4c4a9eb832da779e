"""The arithmetic of a Job: counting its pods, deciding whether it is done, and the status to write.

Pure functions of (job, pods, time), so the decisions — completions reached,
backoff limit passed, deadline exceeded, how long to wait before replacing a
failed pod — can be tested without a cluster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from core.kube import timefmt
from master.controllers import podutil

Obj = dict[str, Any]
MAX_BACKOFF = 360.0  # Kubernetes caps the pod failure back-off at 6 minutes
Verdict = tuple[str, str, str]  # (condition type, reason, message)


def finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


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
class Counts:
    active: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)
    succeeded: int = 0
    failures: int = 0
    ready: int = 0
    restarts: int = 0

    def wanted(self, job: Obj) -> int:
        spec = job.get("spec") or {}
        if spec.get("suspend"):
            return 0
        parallelism = int(spec.get("parallelism", 1) or 0) if spec.get("parallelism") is not None else 1
        completions = spec.get("completions")
        if completions is None:
            return len(self.active) if self.succeeded else parallelism
        return max(min(parallelism, int(completions) - self.succeeded), 0)

    def deadline_left(self, job: Obj, deadline: int, at: dt.datetime) -> float:
        start = timefmt.parse((job.get("status") or {}).get("startTime")) or at
        return max((start + dt.timedelta(seconds=deadline) - at).total_seconds(), 0.0)

    def verdict(self, job: Obj, at: dt.datetime) -> Verdict | None:
        spec = job.get("spec") or {}
        limit = int(spec.get("backoffLimit") or 0) if spec.get("backoffLimit") is not None else 6
        on_failure = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure"
        if self.failures > limit or (on_failure and self.restarts > 0 and self.restarts >= max(limit, 1)):
            return "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int) and self.deadline_left(job, deadline, at) <= 0:
            return "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
        completions = spec.get("completions")
        if (completions is not None and self.succeeded >= int(completions)) or \
                (completions is None and self.succeeded > 0 and not self.active):
            return "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
        return None


def counts(job: Obj, pods: list[Obj]) -> Counts:
    status = job.get("status") or {}
    c = Counts()
    succeeded = 0
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Succeeded":
            succeeded += 1
        elif phase == "Failed":
            c.failed.append(pod)
        elif not podutil.meta(pod).get("deletionTimestamp"):
            c.active.append(pod)
            c.ready += 1 if podutil.is_ready(pod) else 0
            c.restarts += podutil.restarts(pod)
    c.succeeded = max(succeeded, int(status.get("succeeded") or 0))
    c.failures = max(len(c.failed), int(status.get("failed") or 0))
    return c


def make_status(job: Obj, c: Counts, verdict: Verdict | None) -> Obj:
    old = job.get("status") or {}
    stamp = timefmt.rfc3339(timefmt.now())
    status: Obj = {"startTime": old.get("startTime") or stamp, "ready": 0 if verdict else c.ready,
                   "uncountedTerminatedPods": {}}
    if c.active and verdict is None:
        status["active"] = len(c.active)
    if c.succeeded:
        status["succeeded"] = c.succeeded
    if c.failures:
        status["failed"] = c.failures
    conditions = list(old.get("conditions") or [])
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
