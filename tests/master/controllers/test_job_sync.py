"""The Job controller (`job/controller.py`, `job/progress.py`), one `sync(key)` at a time over an in-process store.

Pods never run here: the test writes their phase (Succeeded, Failed) or restart counts through
the client, as a kubelet would, and then lets the controller look. Covered: how many pods run at
once (parallelism, completions left, suspend and the Suspended condition), counting each finished
pod once into the status (the job-tracking finalizer, uncountedTerminatedPods, pods deleted since),
the Complete and Failed conditions `kubectl wait` looks for (backoffLimit, restarts with
OnFailure, activeDeadlineSeconds), the back-off before a failed pod is replaced, stopping a
finished Job's pods, ttlSecondsAfterFinished, orphans (adopted, or let go of), and expectations
against a lagging pod cache (`direct.py` is the harness).
Times that matter (a pod's finish, the Job's start) are written into the objects, never waited for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.kube.timefmt import now, rfc3339
from master.controllers.job.controller import JobController
from tests.master.controllers.direct import Harness, harness

Obj = dict[str, Any]
NS = "default"
KEY = f"{NS}/pi"
TRACKING = "batch.kubernetes.io/job-tracking"
LONG_AGO = "2020-01-01T00:00:00Z"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path, job_backoff_seconds=0) as built:  # failed pods are replaced at once
        yield built


@pytest.fixture
def jc(h: Harness) -> JobController:
    return h.build(JobController)


def make_job(h: Harness, restart_policy: str = "Never", **spec: Any) -> Obj:
    return h.client.create(h.kinds.jobs, NS, {"metadata": {"name": "pi"}, "spec": {
        "template": {"spec": {"restartPolicy": restart_policy, "containers": [{"name": "pi", "image": "perl"}]}},
        **spec}})


def step(h: Harness, jc: JobController) -> list[str]:
    h.catch_up()
    return h.run(jc)


def job(h: Harness) -> Obj:
    j = h.client.get(h.kinds.jobs, NS, "pi")
    assert j is not None
    return j


def status(h: Harness) -> Obj:
    s: Obj = job(h).get("status") or {}
    return s


def pods(h: Harness) -> list[Obj]:
    return h.client.list(h.kinds.pods, NS)


def running(h: Harness) -> list[str]:
    """Pods neither finished nor being deleted, by name."""
    return sorted(p["metadata"]["name"] for p in pods(h) if not p["metadata"].get("deletionTimestamp")
                  and p["status"].get("phase") not in ("Succeeded", "Failed"))


def finish(h: Harness, name: str, phase: str, at: str = LONG_AGO) -> None:
    """The kubelet reports the pod's container terminated at `at`, and the pod `phase`."""
    code = 0 if phase == "Succeeded" else 1
    h.client.patch(h.kinds.pods, NS, name, {"status": {"phase": phase, "containerStatuses": [
        {"name": "pi", "restartCount": 0, "state": {"terminated": {"exitCode": code, "finishedAt": at}}}]}},
        subresource="status")


def conditions(h: Harness) -> dict[str, Obj]:
    return {c["type"]: c for c in status(h).get("conditions") or []}


def test_starts_parallelism_pods_owned_by_the_job(h: Harness, jc: JobController) -> None:
    j = make_job(h, completions=5, parallelism=2)
    assert step(h, jc) == [KEY]
    made = pods(h)
    assert len(made) == 2
    uid = j["metadata"]["uid"]
    for p in made:
        m = p["metadata"]
        assert m["name"].startswith("pi-")
        assert m["labels"]["batch.kubernetes.io/controller-uid"] == uid and m["labels"]["job-name"] == "pi"
        assert [(r["kind"], r["uid"], r["controller"]) for r in m["ownerReferences"]] == [("Job", uid, True)]
        assert p["spec"]["restartPolicy"] == "Never"
    assert status(h)["startTime"]
    step(h, jc)
    assert status(h)["active"] == 2 and len(pods(h)) == 2


def test_a_second_sync_before_the_cache_sees_the_pods_creates_none(h: Harness, jc: JobController) -> None:
    make_job(h, completions=3, parallelism=3)
    h.catch_up()
    jc.sync(KEY)
    assert len(pods(h)) == 3
    jc.sync(KEY)  # the pod cache still shows none (the Job is read live, not from the cache)
    assert len(pods(h)) == 3
    h.catch_up()
    jc.sync(KEY)
    assert len(pods(h)) == 3


def test_never_runs_more_pods_than_completions_still_needed(h: Harness, jc: JobController) -> None:
    make_job(h, completions=3, parallelism=5)
    step(h, jc)
    assert len(running(h)) == 3
    finish(h, running(h)[0], "Succeeded")
    step(h, jc)
    assert len(running(h)) == 2, "two more completions needed: two pods, however large parallelism is"


def test_successes_are_counted_until_the_job_is_complete(h: Harness, jc: JobController) -> None:
    make_job(h, completions=2, parallelism=1)
    step(h, jc)
    [first] = running(h)
    finish(h, first, "Succeeded")
    step(h, jc)
    [second] = running(h)
    assert second != first
    step(h, jc)
    assert status(h)["succeeded"] == 1 and status(h)["active"] == 1
    assert not conditions(h)
    finish(h, second, "Succeeded")
    step(h, jc)
    s = status(h)
    assert s["succeeded"] == 2 and "active" not in s and "failed" not in s
    assert s["completionTime"]
    complete = conditions(h)["Complete"]
    assert complete["status"] == "True" and complete["reason"] == "CompletionsReached"
    assert conditions(h)["SuccessCriteriaMet"]["status"] == "True"
    assert "Failed" not in conditions(h)
    step(h, jc)
    assert not running(h) and len(pods(h)) == 2, "a complete Job starts nothing more"


def test_a_succeeded_pod_removed_later_still_counts(h: Harness, jc: JobController) -> None:
    """The count lives in the status: a completed pod deleted (by hand, or a pod GC) is not run again."""
    make_job(h, completions=2, parallelism=2)
    step(h, jc)
    done, busy = running(h)
    finish(h, done, "Succeeded")
    step(h, jc)
    assert status(h)["succeeded"] == 1
    h.client.delete(h.kinds.pods, NS, done)
    step(h, jc)
    assert running(h) == [busy], "one completion left, one pod already on it"
    assert status(h)["succeeded"] == 1


def test_without_completions_the_first_success_ends_the_job_once_every_pod_is_done(
        h: Harness, jc: JobController) -> None:
    """A work queue: parallel pods, no new one after a success, Complete when the last one finishes."""
    make_job(h, parallelism=3)
    assert job(h)["spec"].get("completions") is None
    step(h, jc)
    a, b, c = running(h)
    finish(h, a, "Succeeded")
    step(h, jc)
    assert running(h) == [b, c], "nothing new, nothing stopped"
    assert "Complete" not in conditions(h)
    finish(h, b, "Succeeded")
    finish(h, c, "Succeeded")
    step(h, jc)
    assert conditions(h)["Complete"]["status"] == "True"
    assert status(h)["succeeded"] == 3


def test_failed_pods_are_replaced_until_the_backoff_limit_fails_the_job(h: Harness, jc: JobController) -> None:
    make_job(h, completions=4, parallelism=2, backoffLimit=1)
    step(h, jc)
    first, second = running(h)
    finish(h, first, "Failed")
    step(h, jc)
    replacement = set(running(h)) - {second}
    assert len(replacement) == 1 and first not in replacement, "one failure of a limit of 1: replaced"
    step(h, jc)
    assert status(h)["failed"] == 1 and status(h)["active"] == 2
    assert not conditions(h)
    finish(h, second, "Failed")
    step(h, jc)
    failed = conditions(h)["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "BackoffLimitExceeded"
    assert conditions(h)["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert "Complete" not in conditions(h)
    assert status(h)["failed"] == 2 and "active" not in status(h)
    assert running(h) == [], "the pod still running is stopped"
    step(h, jc)
    assert running(h) == [], "and nothing starts again"


def test_restarts_with_on_failure_count_against_the_backoff_limit(h: Harness, jc: JobController) -> None:
    make_job(h, restart_policy="OnFailure", completions=1, backoffLimit=2)
    step(h, jc)
    [name] = running(h)

    def restarted(times: int) -> None:
        h.client.patch(h.kinds.pods, NS, name, {"status": {"phase": "Running", "containerStatuses": [
            {"name": "pi", "restartCount": times, "state": {"running": {"startedAt": LONG_AGO}}}]}},
            subresource="status")

    restarted(1)
    step(h, jc)
    assert "Failed" not in conditions(h)
    restarted(2)
    step(h, jc)
    assert conditions(h)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert running(h) == []


def test_a_failed_pod_waits_out_a_doubling_backoff_before_it_is_replaced(tmp_path: Path) -> None:
    """With a 60 s back-off: one failure waits 60 s from the pod's end, two failures 120 s from the last one."""
    with harness(tmp_path, job_backoff_seconds=60) as h:
        jc = h.build(JobController)
        make_job(h, completions=3, parallelism=1, backoffLimit=5)
        step(h, jc)
        [first] = running(h)
        finish(h, first, "Failed", at=rfc3339(now()))
        step(h, jc)
        assert running(h) == [], "failed just now: not replaced yet"
        finish(h, first, "Failed", at=ago(90))
        step(h, jc)
        [second] = running(h)
        finish(h, second, "Failed", at=ago(90))
        step(h, jc)
        assert running(h) == [], "two failures: 120 s, and only 90 have passed"
        finish(h, first, "Failed", at=ago(200))
        finish(h, second, "Failed", at=ago(130))
        step(h, jc)
        assert len(running(h)) == 1, "120 s after the last failure"


def ago(seconds: int) -> str:
    return rfc3339(now() - dt.timedelta(seconds=seconds))


def test_active_deadline_fails_the_job_and_stops_its_pods(h: Harness, jc: JobController) -> None:
    make_job(h, completions=2, parallelism=2, activeDeadlineSeconds=600)
    step(h, jc)
    step(h, jc)
    assert len(running(h)) == 2 and "Failed" not in conditions(h), "well within its deadline"
    j = job(h)
    h.client.update_status(h.kinds.jobs, {**j, "status": {**j["status"], "startTime": ago(601)}})
    step(h, jc)
    failed = conditions(h)["Failed"]
    assert failed["status"] == "True" and failed["reason"] == "DeadlineExceeded"
    assert running(h) == []


def test_suspending_a_job_stops_its_pods_and_resuming_starts_them_again(h: Harness, jc: JobController) -> None:
    make_job(h, completions=4, parallelism=2)
    step(h, jc)
    before = set(running(h))
    h.client.patch(h.kinds.jobs, NS, "pi", {"spec": {"suspend": True}})
    step(h, jc)
    assert running(h) == []
    step(h, jc)
    assert "active" not in status(h)
    assert not conditions(h).get("Failed") and not conditions(h).get("Complete")
    h.client.patch(h.kinds.jobs, NS, "pi", {"spec": {"suspend": False}})
    step(h, jc)
    assert len(running(h)) == 2 and not set(running(h)) & before


def test_a_finished_job_is_deleted_ttl_seconds_after_it_finished(h: Harness, jc: JobController) -> None:
    make_job(h, completions=1, ttlSecondsAfterFinished=0)
    step(h, jc)
    finish(h, running(h)[0], "Succeeded")
    step(h, jc)
    assert conditions(h)["Complete"]["status"] == "True"
    step(h, jc)
    assert h.client.get(h.kinds.jobs, NS, "pi") is None


def test_a_finished_job_with_a_longer_ttl_is_kept(h: Harness, jc: JobController) -> None:
    make_job(h, completions=1, ttlSecondsAfterFinished=3600)
    step(h, jc)
    finish(h, running(h)[0], "Succeeded")
    step(h, jc)
    step(h, jc)
    jc.sync(KEY)
    assert conditions(h)["Complete"]["status"] == "True"


def test_a_finished_job_stops_a_pod_it_adopts_later(h: Harness, jc: JobController) -> None:
    """A matching orphan that shows up after the Job finished is adopted and stopped, not counted."""
    j = make_job(h, completions=1)
    step(h, jc)
    finish(h, running(h)[0], "Succeeded")
    step(h, jc)
    assert conditions(h)["Complete"]["status"] == "True"
    labels = j["spec"]["template"]["metadata"]["labels"]
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "late", "labels": labels},
                                       "spec": {"containers": [{"name": "pi", "image": "perl"}]}})
    h.catch_up()
    jc.sync(KEY)
    assert h.client.get(h.kinds.pods, NS, "late") is None
    assert status(h)["succeeded"] == 1


def test_a_deleted_job_is_a_noop_that_forgets_its_expectations(h: Harness, jc: JobController) -> None:
    """A Job recreated under the same name must not wait for pods its predecessor expected to see."""
    make_job(h, completions=2, parallelism=2)
    h.catch_up()
    jc.sync(KEY)  # two creations expected; the pod cache never sees them
    assert not jc.expectations.satisfied(KEY)
    h.client.delete(h.kinds.jobs, NS, "pi")
    h.catch_up("jobs")
    jc.sync(KEY)
    assert jc.expectations.satisfied(KEY)
    assert len(pods(h)) == 2, "nothing created or deleted for a Job that is gone"
    again = make_job(h, completions=1)
    h.catch_up("jobs")
    jc.sync(KEY)
    mine = [p for p in pods(h) if p["metadata"]["ownerReferences"][0]["uid"] == again["metadata"]["uid"]]
    assert len(mine) == 1, "the new Job starts its pod at once"


def test_a_success_after_a_counted_pod_was_removed_is_counted_too(h: Harness, jc: JobController) -> None:
    make_job(h, completions=2, parallelism=1)
    step(h, jc)
    [first] = running(h)
    finish(h, first, "Succeeded")
    step(h, jc)
    assert status(h)["succeeded"] == 1
    h.client.delete(h.kinds.pods, NS, first)
    [second] = running(h)
    finish(h, second, "Succeeded")
    step(h, jc)
    assert status(h)["succeeded"] == 2
    assert conditions(h)["Complete"]["status"] == "True"
    assert running(h) == []


def test_failures_of_pods_removed_since_still_reach_the_backoff_limit(h: Harness, jc: JobController) -> None:
    make_job(h, completions=1, backoffLimit=1)
    step(h, jc)
    for _ in range(2):
        [name] = running(h)
        finish(h, name, "Failed")
        step(h, jc)
        h.client.delete(h.kinds.pods, NS, name)  # e.g. `kubectl delete pod`, or its node was lost
        step(h, jc)
    assert status(h)["failed"] == 2
    assert conditions(h)["Failed"]["reason"] == "BackoffLimitExceeded"
    assert running(h) == []


def test_the_status_written_by_the_sync_that_creates_pods_counts_them(h: Harness, jc: JobController) -> None:
    make_job(h, completions=4, parallelism=3)
    h.catch_up()
    jc.sync(KEY)
    assert len(running(h)) == 3
    assert status(h).get("active") == 3


def test_a_suspended_job_says_so_in_its_conditions(h: Harness, jc: JobController) -> None:
    make_job(h, completions=1, suspend=True)
    step(h, jc)
    assert running(h) == []
    suspended = conditions(h)["Suspended"]
    assert suspended["status"] == "True" and suspended["reason"] == "JobSuspended"


def test_resuming_a_suspended_job_says_so_and_starts_its_deadline_clock_again(h: Harness, jc: JobController) -> None:
    """Kubernetes: Suspended False (JobResumed), and startTime reset so the suspended time is not active time."""
    make_job(h, completions=1, activeDeadlineSeconds=600, suspend=True)
    step(h, jc)
    assert "startTime" not in status(h), "a Job created suspended has not started"
    h.client.patch(h.kinds.jobs, NS, "pi", {"spec": {"suspend": False}})
    step(h, jc)
    j = job(h)
    h.client.update_status(h.kinds.jobs, {**j, "status": {**j["status"], "startTime": ago(3600)}})
    h.client.patch(h.kinds.jobs, NS, "pi", {"spec": {"suspend": True}})
    step(h, jc)
    assert conditions(h)["Suspended"]["status"] == "True" and running(h) == []
    assert "Failed" not in conditions(h), "no deadline while suspended"
    h.client.patch(h.kinds.jobs, NS, "pi", {"spec": {"suspend": False}})
    step(h, jc)
    resumed = conditions(h)["Suspended"]
    assert (resumed["status"], resumed["reason"], resumed["message"]) == ("False", "JobResumed", "Job resumed")
    assert "Failed" not in conditions(h) and len(running(h)) == 1
    started = dt.datetime.fromisoformat(status(h)["startTime"].replace("Z", "+00:00"))
    assert now() - started < dt.timedelta(seconds=60), "the clock starts again at the resume"


def test_its_pods_carry_the_tracking_finalizer_until_they_are_counted(h: Harness, jc: JobController) -> None:
    make_job(h, completions=2, parallelism=2)
    step(h, jc)
    assert all(p["metadata"]["finalizers"] == [TRACKING] for p in pods(h))
    done, busy = running(h)
    finish(h, done, "Succeeded")
    step(h, jc)
    assert status(h)["succeeded"] == 1 and not status(h)["uncountedTerminatedPods"]
    finalizers = {p["metadata"]["name"]: p["metadata"].get("finalizers") or [] for p in pods(h)}
    assert finalizers == {done: [], busy: [TRACKING]}


def test_a_pod_deleted_before_it_finished_is_a_failure_and_let_go(h: Harness, jc: JobController) -> None:
    """Someone else deletes a running pod (`kubectl delete pod`, a lost node): Kubernetes counts a failure."""
    make_job(h, completions=1, backoffLimit=3)
    step(h, jc)
    [victim] = running(h)
    h.client.delete(h.kinds.pods, NS, victim)
    assert h.client.get(h.kinds.pods, NS, victim) is not None, "the finalizer holds it until it is counted"
    step(h, jc)
    assert status(h)["failed"] == 1
    assert h.client.get(h.kinds.pods, NS, victim) is None, "counted: the finalizer went, and the pod with it"
    assert len(running(h)) == 1, "and it is replaced"


def test_a_pod_the_job_stops_itself_is_no_failure(h: Harness, jc: JobController) -> None:
    make_job(h, completions=4, parallelism=3)
    step(h, jc)
    h.client.patch(h.kinds.jobs, NS, "pi", {"spec": {"parallelism": 1}})
    step(h, jc)
    assert len(running(h)) == 1 and len(pods(h)) == 1
    step(h, jc)
    assert "failed" not in status(h) and status(h)["active"] == 1


def test_a_cache_behind_the_finalizer_removal_does_not_count_a_pod_twice(h: Harness, jc: JobController) -> None:
    make_job(h, completions=3, parallelism=1)
    step(h, jc)
    [first] = running(h)
    finish(h, first, "Succeeded")
    h.catch_up()
    jc.sync(KEY)
    assert status(h)["succeeded"] == 1
    jc.sync(KEY)  # the pod cache still shows the pod succeeded and carrying the finalizer
    assert status(h)["succeeded"] == 1
    step(h, jc)
    assert status(h)["succeeded"] == 1 and len(running(h)) == 1


def test_a_pod_listed_as_uncounted_is_counted_once_its_finalizer_is_gone(h: Harness, jc: JobController) -> None:
    """A controller that stopped between letting go of a pod and counting it: the next sync counts it."""
    make_job(h, completions=2, parallelism=1)
    step(h, jc)
    step(h, jc)  # the pod cache has seen the pod
    [first] = running(h)
    finish(h, first, "Succeeded")
    uid = h.client.get(h.kinds.pods, NS, first)["metadata"]["uid"]  # type: ignore[index]
    j = job(h)
    h.client.update_status(h.kinds.jobs, {**j, "status": {**j["status"], "uncountedTerminatedPods": {
        "succeeded": [uid]}}})
    h.client.patch(h.kinds.pods, NS, first, {"metadata": {"finalizers": None}})
    h.client.delete(h.kinds.pods, NS, first)
    step(h, jc)
    assert status(h)["succeeded"] == 1 and not status(h)["uncountedTerminatedPods"]
    assert len(running(h)) == 1


def test_the_pods_of_a_deleted_job_are_let_go(h: Harness, jc: JobController) -> None:
    """No garbage collector here: the pods are deleted by hand; without their Job nothing else removes the finalizer."""
    make_job(h, completions=2, parallelism=2)
    step(h, jc)
    h.client.delete(h.kinds.jobs, NS, "pi")
    for name in running(h):
        h.client.delete(h.kinds.pods, NS, name)
    assert len(pods(h)) == 2
    step(h, jc)
    assert pods(h) == []


def test_a_released_pod_loses_the_finalizer(h: Harness, jc: JobController) -> None:
    """A pod relabelled out of the selector is released, and no longer held for a count that will not come."""
    make_job(h, completions=1)
    step(h, jc)
    [name] = running(h)
    h.client.patch(h.kinds.pods, NS, name, {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "x"}}})
    step(h, jc)
    released = h.client.get(h.kinds.pods, NS, name)
    assert released is not None and not released["metadata"].get("ownerReferences")
    assert not released["metadata"].get("finalizers")
    assert len(running(h)) == 2, "the Job runs a pod of its own instead"


def test_a_matching_orphan_wakes_its_job_which_adopts_it(tmp_path: Path) -> None:
    """As Kubernetes' addPod: a new orphan enqueues the Jobs whose selector matches it."""
    with harness(tmp_path, job_backoff_seconds=3600) as h:
        jc = h.build(JobController)
        j = make_job(h, completions=1, backoffLimit=2)
        step(h, jc)
        finish(h, running(h)[0], "Failed", at=rfc3339(now()))
        step(h, jc)
        step(h, jc)
        assert running(h) == [] and status(h)["failed"] == 1, "its replacement waits out an hour of back-off"
        labels = j["spec"]["template"]["metadata"]["labels"]
        h.client.create(h.kinds.pods, NS, {"metadata": {"name": "stray", "labels": labels},
                                           "spec": {"containers": [{"name": "pi", "image": "perl"}]}})
        h.catch_up()
        assert KEY in h.run(jc)
        stray = h.client.get(h.kinds.pods, NS, "stray")
        assert stray is not None and stray["metadata"]["ownerReferences"][0]["uid"] == j["metadata"]["uid"]
        assert stray["metadata"]["finalizers"] == [TRACKING], "adopted pods are tracked too"
        assert running(h) == ["stray"]
