"""The Job controller: runs pods until `completions` succeed, or fails the Job within its limits.

Up to `parallelism` pods run at once. Failures count against `backoffLimit`
(pod failures with restartPolicy Never, container restarts with OnFailure) and
a failed pod is replaced only after an exponential back-off; passing the
limit, or `activeDeadlineSeconds`, fails the Job and stops its pods. A
finished Job gets the `Complete` or `Failed` condition `kubectl wait` looks
for, and is deleted `ttlSecondsAfterFinished` later (Kubernetes runs that TTL
in a controller of its own; here it is the tail of the same sync). A
suspended Job runs no pods and says so in a `Suspended` condition; resuming
it restarts the clock of its deadline.

Each finished pod is counted once, through the `batch.kubernetes.io/job-tracking`
finalizer its pods carry and `status.uncountedTerminatedPods` (`progress.py`
explains the steps). A pod that carries the finalizer but no longer belongs
to a Job that will count it — orphaned, or its Job is gone or finished — is
let go on its own queue key (`orphan-pod:<ns>/<name>`), as Kubernetes' orphan
queue does, or it could never be deleted. The status a sync writes counts the
pods it just created or deleted, as Kubernetes' manageJob returns them.
"""

from __future__ import annotations

from typing import Any

from core import errors
from core.kube import timefmt
from master.client import Env, Informer, obj_key, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.expectations import Expectations, UidExpectations
from master.controllers.job.progress import (
    TRACKING_FINALIZER,
    Counts,
    Uncounted,
    backoff_left,
    counts,
    finish_time,
    finished,
    make_status,
    suspended,
    tracked,
)
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim
from master.controllers.slowstart import slow_start

Obj = dict[str, Any]
COMPONENT = "job-controller"
ORPHAN = "orphan-pod:"  # the key of a pod whose finalizer is to go (no namespace has a ':' in its name)
UNTRACK: Obj = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}


class JobController(Controller):
    name = "job"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.expectations = Expectations()
        self.untracking = UidExpectations()  # pods whose finalizer we removed, until the pod cache shows it
        self.jobs: Informer = env.informers.informer(self.kinds.jobs)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.jobs.add_indexer("namespace", by_namespace)
        self.pods.add_indexer("namespace", by_namespace)
        self.primary = self.jobs
        self.jobs.add_handler(self._job_changed)
        self.pods.add_handler(self._pod_changed)

    def _job_changed(self, old: Obj | None, new: Obj | None) -> None:
        job = new or old
        assert job is not None
        self.enqueue(job)
        if new is None or (old is not None and finished(new) and not finished(old)):  # a backup: let its pods go
            uid = podutil.meta(job).get("uid")
            for pod in self.pods.by_index("namespace", podutil.meta(job).get("namespace", "")):
                if tracked(pod) and podutil.controller_uid(pod) == uid:
                    self.queue.add(ORPHAN + obj_key(pod))

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = owner_key(pod, "Job")
        before = owner_key(old, "Job") if old is not None and new is not None else None
        if new is None or not tracked(new):
            for k in (key, before):
                if k is not None:
                    self.untracking.observed(k, podutil.meta(pod).get("uid", ""))
        if key is not None:
            if old is None:  # first seen, perhaps already being deleted: a creation observed all the same
                self.expectations.creation_observed(key)
            if new is None or (podutil.meta(new).get("deletionTimestamp") and
                               not (old and podutil.meta(old).get("deletionTimestamp"))):
                self.expectations.deletion_observed(key, obj_key(pod))
            self.queue.add(key)
            job = self.jobs.get_key(key)
            if new is not None and tracked(new) and (
                    job is None or podutil.meta(job).get("uid") != podutil.controller_uid(new) or finished(job)):
                self.queue.add(ORPHAN + obj_key(new))
        if before is not None and before != key:
            self.queue.add(before)
        if key is None and new is not None:  # an orphan
            if tracked(new):
                self.queue.add(ORPHAN + obj_key(new))
            labels = podutil.meta(new).get("labels") or {}
            if old is None or labels != (podutil.meta(old).get("labels") or {}) or \
                    podutil.controller_of(old) != podutil.controller_of(new):
                for job in self.jobs.by_index("namespace", podutil.meta(new).get("namespace", "")):
                    selector = (job.get("spec") or {}).get("selector")
                    if selector and podutil.selector(selector).matches(labels):
                        self.enqueue(job)  # it may adopt the pod

    def sync(self, key: str) -> None:
        if key.startswith(ORPHAN):
            self._sync_orphan(key[len(ORPHAN):])
            return
        ns, name = split_key(key)
        if self.jobs.get(ns, name) is None:
            self.expectations.forget(key)
            self.untracking.forget(key)
            return
        # The live object, not the cache: our own finishing write may not be in the cache yet,
        # and a Job that looks unfinished would start a pod after it failed.
        job = self.client.get(self.kinds.jobs, ns, name)
        if job is None:
            return
        spec = job.get("spec") or {}
        selector = podutil.selector(spec.get("selector"))
        pods = claim(self.client, self.kinds.pods, self.kinds.jobs, job, self.pods.by_index("namespace", ns),
                     selector, TRACKING_FINALIZER)
        if finished(job):
            self._finished(key, job, pods)
            return
        c = counts(job, pods, self.untracking.expected(key))
        verdict = c.verdict(job, timefmt.now())
        active, ready, managed = len(c.active), c.ready, False
        error: Exception | None = None
        if verdict is not None:
            stopped, error = self._stop(key, job, c.active)
            active -= len(stopped)
        elif self.expectations.satisfied(key) and not podutil.meta(job).get("deletionTimestamp"):
            active, ready, error = self._manage(key, job, c)
            managed = True
        job, untrack_error = self._track(key, job, c)
        error = error or untrack_error
        # Finished only once every pod is stopped and every finished one counted.
        final = verdict if verdict is not None and error is None and not c.uncounted else None
        status = make_status(job, c, final, active, ready, managed)
        if status != (job.get("status") or {}):
            self.client.update_status(self.kinds.jobs, {**job, "status": status})
        self._events(job, status, final)
        deadline = spec.get("activeDeadlineSeconds")
        if final is None and isinstance(deadline, int) and not suspended(job):
            self.queue.add_after(key, c.deadline_left({**job, "status": status}, deadline, timefmt.now()) + 0.5)
        if error is not None:
            raise error

    def _manage(self, key: str, job: Obj, c: Counts) -> tuple[int, int, Exception | None]:
        """Create or delete pods towards what the Job wants; (active, ready) after, and the first error."""
        active, wanted = c.active, c.wanted(job)
        if len(active) > wanted:
            victims = sorted(active, key=podutil.deletion_rank)[:len(active) - wanted]
            stopped, error = self._stop(key, job, victims)
            return len(active) - len(stopped), c.ready - sum(1 for p in stopped if podutil.is_ready(p)), error
        if len(active) == wanted:
            return len(active), c.ready, None
        wait = backoff_left(c.failed, self.env.settings.job_backoff_seconds, timefmt.now())
        if wait > 0:
            self.queue.add_after(key, wait)
            return len(active), c.ready, None
        count = wanted - len(active)
        self.expectations.expect(key, adds=count)
        template = (job.get("spec") or {}).get("template") or {}
        made: list[str] = []

        def create(_: int) -> None:
            pod = podutil.pod_from_template(template, job, "batch/v1", "Job", f"{job['metadata']['name']}-")
            pm = pod["metadata"]
            pm["finalizers"] = [*(pm.get("finalizers") or []), TRACKING_FINALIZER]
            try:
                created = self.client.create(self.kinds.pods, job["metadata"]["namespace"], pod)
            except Exception:
                self.expectations.creation_observed(key)
                raise
            made.append(created["metadata"]["name"])
            self.env.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                                    COMPONENT)

        attempted, error = slow_start(count, create)
        for _ in range(count - attempted):
            self.expectations.creation_observed(key)
        return len(active) + len(made), c.ready, error

    def _track(self, key: str, job: Obj, c: Counts) -> tuple[Obj, Exception | None]:
        """Record newly finished pods as uncounted, let go of them, and count those let go (`progress.py`).

        Returns the Job as written (its status then holds the new uncounted uids) and the first error.
        """
        if c.uncounted != Uncounted.of(job):
            status = {**(job.get("status") or {}), "uncountedTerminatedPods": c.uncounted.doc()}
            job = self.client.update_status(self.kinds.jobs, {**job, "status": status})
        removed, error = self._untrack(key, c.untrack)
        c.carrying -= removed
        c.uncounted.keep(c.carrying)
        return job, error

    def _untrack(self, key: str, pods: list[Obj]) -> tuple[set[str], Exception | None]:
        """Remove the tracking finalizer from `pods`; the uids it is gone from (or whose pod is), first error."""
        if not pods:
            return set(), None
        self.untracking.expect(key, {str(podutil.meta(p).get("uid")) for p in pods})
        removed: set[str] = set()
        error: Exception | None = None
        for pod in pods:
            m = pod["metadata"]
            try:
                self.client.patch(self.kinds.pods, m["namespace"], m["name"], UNTRACK, patch_type="strategic")
            except errors.NotFound:
                pass  # gone already: the pod cache will report the deletion
            except errors.ApiError as exc:
                self.untracking.observed(key, m["uid"])  # no change of it to wait for
                error = error or exc
                continue
            removed.add(m["uid"])
        return removed, error

    def _stop(self, key: str, job: Obj, pods: list[Obj]) -> tuple[list[Obj], Exception | None]:
        """Delete `pods`, each after its finalizer is gone (a pod the Job stops is no failure); those deleted."""
        if not pods:
            return [], None
        self.expectations.expect(key, deletions={obj_key(p) for p in pods})
        removed, error = self._untrack(key, [p for p in pods if tracked(p)])
        stopped: list[Obj] = []
        for pod in pods:
            m = pod["metadata"]
            if tracked(pod) and m["uid"] not in removed:
                self.expectations.deletion_observed(key, obj_key(pod))
                continue
            if self.client.delete(self.kinds.pods, m["namespace"], m["name"], uid=m["uid"]) is None:
                self.expectations.deletion_observed(key, obj_key(pod))
            else:
                self.env.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", COMPONENT)
            stopped.append(pod)
        return stopped, error

    def _events(self, job: Obj, status: Obj, final: tuple[str, str, str] | None) -> None:
        if final is not None:
            kind, reason, message = final
            if kind == "Complete":
                self.env.recorder.event(job, "Normal", "Completed", "Job completed", COMPONENT)
            else:
                self.env.recorder.event(job, "Warning", reason, message, COMPONENT)
        before = podutil.condition(job, "Suspended")
        after = podutil.condition({"status": status}, "Suspended")
        if after is not None and (before is None or before.get("status") != after.get("status")):
            if after.get("status") == "True":
                self.env.recorder.event(job, "Normal", "Suspended", "Job suspended", COMPONENT)
            else:
                self.env.recorder.event(job, "Normal", "Resumed", "Job resumed", COMPONENT)

    def _sync_orphan(self, pod_key: str) -> None:
        """Let go of a pod no Job will count (Kubernetes' syncOrphanPod): orphaned, or its Job gone or finished."""
        ns, name = split_key(pod_key)
        pod = self.pods.get(ns, name)
        if pod is None or not tracked(pod):
            return
        ref = podutil.controller_of(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or not str(ref.get("apiVersion", "")).startswith("batch/"):
                return  # someone else's pod: not our finalizer to remove
            job = self.jobs.get(ns, str(ref.get("name", "")))
            if job is not None and podutil.meta(job).get("uid") == ref.get("uid") and not finished(job):
                return  # its Job's sync counts it
        try:
            self.client.patch(self.kinds.pods, ns, name, UNTRACK, patch_type="strategic")
        except errors.NotFound:
            return

    def _finished(self, key: str, job: Obj, pods: list[Obj]) -> None:
        """A finished Job: stop what still runs (a pod adopted late), let go of every pod, and its TTL."""
        _, error = self._stop(key, job, [p for p in pods if podutil.is_active(p)])
        expected = self.untracking.expected(key)
        _, left = self._untrack(key, [p for p in pods if not podutil.is_active(p) and tracked(p)
                                     and podutil.meta(p).get("uid") not in expected])
        self._after_finish(key, job)
        error = error or left
        if error is not None:
            raise error

    def _after_finish(self, key: str, job: Obj) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if not isinstance(ttl, int) or podutil.meta(job).get("deletionTimestamp"):
            return
        done_at = finish_time(job)
        left = ttl - (timefmt.now() - done_at).total_seconds() if done_at else 0.0
        if left > 0:
            self.queue.add_after(key, left)
            return
        m = job["metadata"]
        self.client.delete(self.kinds.jobs, m["namespace"], m["name"], propagation="Background", uid=m["uid"])
