"""The Job controller: runs pods until `completions` succeed, or fails the Job within its limits.

Up to `parallelism` pods run at once. Failures count against `backoffLimit`
(pod failures with restartPolicy Never, container restarts with OnFailure) and
a failed pod is replaced only after an exponential back-off; passing the
limit, or `activeDeadlineSeconds`, fails the Job and stops its pods. A
finished Job gets the `Complete` or `Failed` condition `kubectl wait` looks
for, and is deleted `ttlSecondsAfterFinished` later (Kubernetes runs that TTL
in a controller of its own; here it is the tail of the same sync).
"""

from __future__ import annotations

from typing import Any

from core.kube import timefmt
from master.client import Env, Informer, obj_key, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.expectations import Expectations
from master.controllers.job.progress import backoff_left, counts, finish_time, finished, make_status
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim
from master.controllers.slowstart import slow_start

Obj = dict[str, Any]
COMPONENT = "job-controller"


class JobController(Controller):
    name = "job"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.expectations = Expectations()
        self.jobs: Informer = env.informers.informer(self.kinds.jobs)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.pods.add_indexer("namespace", by_namespace)
        self.primary = self.jobs
        self.jobs.add_handler(lambda old, new: self.enqueue(new or old))
        self.pods.add_handler(self._pod_changed)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = owner_key(pod, "Job")
        if key is None:
            return
        if new is None or (podutil.meta(new).get("deletionTimestamp") and
                           not (old and podutil.meta(old).get("deletionTimestamp"))):
            self.expectations.deletion_observed(key, obj_key(pod))
        elif old is None:
            self.expectations.creation_observed(key)
        self.queue.add(key)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        if self.jobs.get(ns, name) is None:
            self.expectations.forget(key)
            return
        # The live object, not the cache: our own finishing write may not be in the cache yet,
        # and a Job that looks unfinished would start a pod after it failed.
        job = self.client.get(self.kinds.jobs, ns, name)
        if job is None:
            return
        spec = job.get("spec") or {}
        selector = podutil.selector(spec.get("selector"))
        pods = claim(self.client, self.kinds.pods, self.kinds.jobs, job, self.pods.by_index("namespace", ns),
                     selector)
        if finished(job):
            self._stop(key, job, [p for p in pods if podutil.is_active(p)])
            self._after_finish(key, job)
            return
        c = counts(job, pods)
        verdict = c.verdict(job, timefmt.now())
        if verdict is None and self.expectations.satisfied(key) and not podutil.meta(job).get("deletionTimestamp"):
            self._manage(key, job, c.active, c.wanted(job), c.failed)
        if verdict is not None:
            self._stop(key, job, c.active)
            kind, reason, message = verdict
            if kind == "Complete":
                self.env.recorder.event(job, "Normal", "Completed", "Job completed", COMPONENT)
            else:
                self.env.recorder.event(job, "Warning", reason, message, COMPONENT)
        status = make_status(job, c, verdict)
        if status != (job.get("status") or {}):
            self.client.update_status(self.kinds.jobs, {**job, "status": status})
        deadline = spec.get("activeDeadlineSeconds")
        if verdict is None and isinstance(deadline, int):
            self.queue.add_after(key, c.deadline_left(job, deadline, timefmt.now()) + 0.5)

    def _manage(self, key: str, job: Obj, active: list[Obj], wanted: int, failed: list[Obj]) -> None:
        if len(active) > wanted:
            victims = sorted(active, key=podutil.deletion_rank)[:len(active) - wanted]
            self._stop(key, job, victims)
            return
        if len(active) == wanted:
            return
        wait = backoff_left(failed, self.env.settings.job_backoff_seconds, timefmt.now())
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        count = wanted - len(active)
        self.expectations.expect(key, adds=count)
        template = (job.get("spec") or {}).get("template") or {}

        def create(_: int) -> None:
            pod = podutil.pod_from_template(template, job, "batch/v1", "Job", f"{job['metadata']['name']}-")
            try:
                made = self.client.create(self.kinds.pods, job["metadata"]["namespace"], pod)
            except Exception:
                self.expectations.creation_observed(key)
                raise
            self.env.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {made['metadata']['name']}",
                                    COMPONENT)

        attempted, error = slow_start(count, create)
        for _ in range(count - attempted):
            self.expectations.creation_observed(key)
        if error is not None:
            raise error

    def _stop(self, key: str, job: Obj, pods: list[Obj]) -> None:
        self.expectations.expect(key, deletions={obj_key(p) for p in pods})
        for pod in pods:
            m = pod["metadata"]
            if self.client.delete(self.kinds.pods, m["namespace"], m["name"], uid=m["uid"]) is None:
                self.expectations.deletion_observed(key, obj_key(pod))
            else:
                self.env.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", COMPONENT)

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
