"""The CronJob controller: a Job for each scheduled time, as Kubernetes' CronJob controller makes them.

Every 10 s (and on any change of a CronJob or its Jobs) each CronJob is looked at:

* its Jobs (found by owner) are sorted into active and finished; `status.active`
  lists the active ones, `lastSuccessfulTime` the newest completion, and a Job
  that finished since the last look gets a `SawCompletedJob` event;
* unless suspended, the schedule (in `spec.timeZone`, UTC when unset) is
  replayed from `lastScheduleTime` (else the creation time, but no further back
  than `startingDeadlineSeconds`): of the start times missed up to now only the
  most recent is run — once, also after a master was down across several —
  and more than 100 of them earns the "too many missed start times" warning;
  one older than `startingDeadlineSeconds` is not run at all;
* `concurrencyPolicy` decides about a run while one is active: Allow starts it,
  Forbid waits (the run starts when the active one ends, if still within the
  deadline), Replace deletes the active Jobs first;
* the Job is `<cronjob>-<scheduled time in minutes since the epoch>` (so a run
  is created once whatever happens), owned by the CronJob, from `jobTemplate`;
* finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`
  are deleted, oldest first.

The clock is injected (tests drive it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from core import errors
from core.kube import cron, timefmt
from master.client import Env, Informer, split_key
from master.controllers.base import Controller
from master.registry.cronjobs import zone

Obj = dict[str, Any]
COMPONENT = "cronjob-controller"
TOO_MANY_MISSED = 100
SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _finished(job: Obj) -> str:
    """"Complete" or "Failed" once the Job ended, else ""."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return str(c["type"])
    return ""


def _owner_uid(job: Obj) -> str:
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "CronJob" and ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def _age_order(job: Obj) -> tuple[str, str]:
    """Oldest first: by scheduled time (else creation), then name (whose suffix is the scheduled minute)."""
    meta = job.get("metadata") or {}
    when = (meta.get("annotations") or {}).get(SCHEDULED_ANNOTATION) or meta.get("creationTimestamp") or ""
    return str(when), str(meta.get("name") or "")


def job_name(cronjob: str, scheduled: dt.datetime) -> str:
    return f"{cronjob}-{int(scheduled.timestamp() // 60)}"


class CronJobController(Controller):
    name = "cronjob"
    workers = 1

    def __init__(self, env: Env, clock: Callable[[], dt.datetime] = timefmt.now) -> None:
        super().__init__(env)
        rt = env.client.catalog.by_kind("batch", "CronJob")
        if rt is None:
            raise LookupError("the catalog serves no CronJob")
        self.rt = rt
        self.clock = clock
        self.cronjobs: Informer = env.informers.informer(rt)
        self.jobs: Informer = env.informers.informer(self.kinds.jobs)
        self.jobs.add_indexer("cronjob", lambda job: [_owner_uid(job)] if _owner_uid(job) else [])
        self.cronjobs.add_indexer("uid", lambda cj: [str(cj["metadata"].get("uid") or "")])
        self.primary = self.cronjobs
        self.cronjobs.add_handler(lambda old, new: self.enqueue(new or old))
        self.jobs.add_handler(self._job_changed)

    def resync_period(self) -> float:
        return 10.0

    def _job_changed(self, old: Obj | None, new: Obj | None) -> None:
        uid = _owner_uid(new or old or {})
        for cj in self.cronjobs.by_index("uid", uid) if uid else ():
            self.enqueue(cj)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        cj = self.cronjobs.get(ns, name)
        if cj is None:
            return
        spec, status = cj.get("spec") or {}, dict(cj.get("status") or {})
        now = self.clock()
        jobs = sorted(self.jobs.by_index("cronjob", str(cj["metadata"]["uid"])), key=_age_order)
        active = [j for j in jobs if not _finished(j)]
        was_active = {ref.get("uid") for ref in status.get("active") or []}
        for job in jobs:
            if _finished(job) and job["metadata"].get("uid") in was_active:
                self._event(cj, "Normal", "SawCompletedJob",
                            f"Saw completed job: {job['metadata']['name']}, status: {_finished(job)}")
        completed = [str((j.get("status") or {}).get("completionTime")) for j in jobs
                     if _finished(j) == "Complete" and (j.get("status") or {}).get("completionTime")]
        if completed:
            status["lastSuccessfulTime"] = max([*completed, str(status.get("lastSuccessfulTime") or "")])
        if not cj["metadata"].get("deletionTimestamp") and not spec.get("suspend"):
            active = self._maybe_run(cj, spec, status, active, now)
        self._cleanup(cj, spec, [j for j in jobs if _finished(j)])
        status["active"] = [self._ref(j) for j in active]
        if not status["active"]:
            status.pop("active")
        if status != (cj.get("status") or {}):
            fresh = self.client.get(self.rt, ns, name)
            if fresh is not None:
                fresh["status"] = status
                self.client.update_status(self.rt, fresh)

    def _maybe_run(self, cj: Obj, spec: Obj, status: Obj, active: list[Obj], now: dt.datetime) -> list[Obj]:
        try:
            schedule = cron.parse(str(spec.get("schedule") or ""))
            tz = zone(spec.get("timeZone"))
        except (cron.CronError, ValueError, LookupError) as exc:
            self._event(cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {exc}")
            return active
        start = timefmt.parse(status.get("lastScheduleTime") or cj["metadata"].get("creationTimestamp")) or now
        deadline = spec.get("startingDeadlineSeconds")
        if isinstance(deadline, int) and start < now - dt.timedelta(seconds=deadline):
            start = now - dt.timedelta(seconds=deadline)
        missed, latest, jumped = 0, None, False
        t = start.astimezone(tz)
        local_now = now.astimezone(tz)
        while True:
            nxt = schedule.next_after(t)
            if nxt is None or nxt > local_now:
                break
            if latest is not None and missed > TOO_MANY_MISSED and not jumped:
                # Enough counted to warn: find the most recent from shortly before now (two gaps back).
                jumped = True
                t = max(nxt, local_now - 2 * (nxt - latest) - dt.timedelta(minutes=1))
                latest = nxt
                continue
            missed, latest, t = missed + 1, nxt, nxt
        if latest is None:
            return active
        if missed > TOO_MANY_MISSED:
            self._event(cj, "Warning", "TooManyMissedTimes",
                        f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or "
                        "check clock skew")
        scheduled = latest.astimezone(dt.UTC)
        if isinstance(deadline, int) and now - scheduled > dt.timedelta(seconds=deadline):
            self._event(cj, "Warning", "MissedSchedule",
                        f"Missed scheduled time to start a job: {scheduled.strftime('%a, %d %b %Y %H:%M:%S +0000')}")
            return active
        policy = spec.get("concurrencyPolicy") or "Allow"
        if active and policy == "Forbid":
            self._event(cj, "Normal", "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid")
            return active
        if active and policy == "Replace":
            for job in active:
                self.client.delete(self.kinds.jobs, job["metadata"]["namespace"], job["metadata"]["name"],
                                   propagation="Background", uid=str(job["metadata"].get("uid") or ""))
                self._event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}")
            active = []
        made = self._create_job(cj, spec, scheduled)
        status["lastScheduleTime"] = timefmt.rfc3339(scheduled)
        return [*active, made] if made is not None else active

    def _create_job(self, cj: Obj, spec: Obj, scheduled: dt.datetime) -> Obj | None:
        meta, template = cj["metadata"], spec.get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        name = job_name(meta["name"], scheduled)
        body: Obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": name, "namespace": meta["namespace"], "labels": dict(tmeta.get("labels") or {}),
            "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED_ANNOTATION: timefmt.rfc3339(scheduled)},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": template.get("spec") or {}}
        try:
            made = self.client.create(self.kinds.jobs, meta["namespace"], body)
        except errors.AlreadyExists:
            return self.client.get(self.kinds.jobs, meta["namespace"], name)  # made before (a restart)
        self._event(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        return made

    def _cleanup(self, cj: Obj, spec: Obj, finished: list[Obj]) -> None:
        for outcome, limit_key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(limit_key)
            if not isinstance(limit, int):
                continue
            these = [j for j in finished if _finished(j) == outcome]
            for job in these[:max(0, len(these) - limit)]:
                self.client.delete(self.kinds.jobs, job["metadata"]["namespace"], job["metadata"]["name"],
                                   propagation="Background", uid=str(job["metadata"].get("uid") or ""))
                self._event(cj, "Normal", "SuccessfulDelete", f"Deleted job {job['metadata']['name']}")

    @staticmethod
    def _ref(job: Obj) -> Obj:
        m = job["metadata"]
        return {"apiVersion": "batch/v1", "kind": "Job", "name": m["name"], "namespace": m["namespace"],
                "uid": m.get("uid", ""), "resourceVersion": m.get("resourceVersion", "")}

    def _event(self, cj: Obj, type_: str, reason: str, message: str) -> None:
        self.env.recorder.event(cj, type_, reason, message, COMPONENT)

