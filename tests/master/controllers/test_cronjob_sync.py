"""The CronJob controller, one `sync(key)` at a time over an in-process store with a clock the test turns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.kube.timefmt import rfc3339
from master.controllers.cronjob import CronJobController, job_name
from tests.master.controllers.direct import Harness

Obj = dict[str, Any]
NS = "default"
UTC = dt.UTC
CREATED = dt.datetime(2026, 12, 5, 10, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = CREATED

    def __call__(self) -> dt.datetime:
        return self.now




def cronjob(h: Harness, created: dt.datetime = CREATED, **spec: Any) -> Obj:
    rt = h.client.catalog.by_kind("batch", "CronJob")
    made = h.client.create(rt, NS, {"metadata": {"name": "tick"}, "spec": {
        "schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}, **spec}})
    # The creation time the test's clock starts from (the store stamps the real one).
    made["metadata"]["creationTimestamp"] = rfc3339(created)
    h.store.update(rt.key(NS, "tick"), made)
    return made


def jobs(h: Harness) -> list[Obj]:
    return sorted(h.client.list(h.kinds.jobs, NS), key=lambda j: str(j["metadata"]["name"]))


def finish(h: Harness, name: str, outcome: str = "Complete", when: dt.datetime = CREATED) -> None:
    job = h.client.get(h.kinds.jobs, NS, name)
    assert job is not None
    job["status"] = {"conditions": [{"type": outcome, "status": "True"}],
                     **({"completionTime": rfc3339(when)} if outcome == "Complete" else {})}
    h.client.update_status(h.kinds.jobs, job)


def run(h: Harness, ctl: CronJobController) -> Obj:
    h.catch_up()
    ctl.sync(f"{NS}/tick")
    h.catch_up()
    got = h.client.get(h.client.catalog.by_kind("batch", "CronJob"), NS, "tick")
    assert got is not None
    return got


def test_a_job_per_scheduled_time_named_owned_and_recorded(h: Harness, events: list[Any]) -> None:
    clock = Clock()
    cj = cronjob(h)
    ctl = CronJobController(h.env, clock)
    assert run(h, ctl).get("status", {}).get("active") is None and jobs(h) == []  # 10:00:30: nothing due yet
    clock.now = CREATED + dt.timedelta(minutes=5)  # 10:05:30
    got = run(h, ctl)
    due = dt.datetime(2026, 12, 5, 10, 5, tzinfo=UTC)
    [job] = jobs(h)
    assert job["metadata"]["name"] == job_name("tick", due) == f"tick-{int(due.timestamp() // 60)}"
    ref = job["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("CronJob", cj["metadata"]["uid"], True)
    assert job["metadata"]["labels"]["app"] == "tick"
    assert got["status"]["lastScheduleTime"] == "2026-12-05T10:05:00Z"
    assert [a["name"] for a in got["status"]["active"]] == [job["metadata"]["name"]]
    assert ("Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}") in events
    assert len(jobs(h)) == 1 and run(h, ctl)  # the same time is never run twice
    assert len(jobs(h)) == 1
    finish(h, job["metadata"]["name"], when=CREATED + dt.timedelta(minutes=6))
    got = run(h, ctl)
    assert "active" not in got["status"] and got["status"]["lastSuccessfulTime"] == "2026-12-05T10:06:30Z"
    assert any(e[1] == "SawCompletedJob" for e in events)


def test_forbid_waits_for_the_active_run_and_replace_replaces_it(h: Harness, events: list[Any]) -> None:
    clock = Clock()
    cronjob(h, concurrencyPolicy="Forbid")
    ctl = CronJobController(h.env, clock)
    clock.now = CREATED + dt.timedelta(minutes=5)
    run(h, ctl)
    clock.now = CREATED + dt.timedelta(minutes=10)
    run(h, ctl)
    assert len(jobs(h)) == 1
    assert ("Normal", "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid") in events
    rt = h.client.catalog.by_kind("batch", "CronJob")
    h.client.patch(rt, NS, "tick", {"spec": {"concurrencyPolicy": "Replace"}})
    run(h, ctl)
    names = [j["metadata"]["name"] for j in jobs(h) if not j["metadata"].get("deletionTimestamp")]
    assert names == [job_name("tick", dt.datetime(2026, 12, 5, 10, 10, tzinfo=UTC))]
    assert any(e[1] == "SuccessfulDelete" for e in events)


def test_suspend_stops_runs(h: Harness, events: list[Any]) -> None:
    clock = Clock()
    cronjob(h, suspend=True)
    ctl = CronJobController(h.env, clock)
    clock.now = CREATED + dt.timedelta(hours=1)
    run(h, ctl)
    assert jobs(h) == []


def test_a_master_down_across_many_start_times_runs_once_and_says_so(h: Harness, events: list[Any]) -> None:
    clock = Clock()
    cronjob(h, schedule="*/1 * * * *")
    ctl = CronJobController(h.env, clock)
    clock.now = CREATED + dt.timedelta(hours=5, seconds=10)  # 300 start times missed
    got = run(h, ctl)
    [job] = jobs(h)
    assert got["status"]["lastScheduleTime"] == "2026-12-05T15:00:00Z"  # only the most recent
    assert job["metadata"]["name"] == job_name("tick", dt.datetime(2026, 12, 5, 15, 0, tzinfo=UTC))
    assert any(e[1] == "TooManyMissedTimes" and "too many missed start times: " in e[2] for e in events)


def test_a_start_time_past_the_deadline_is_not_run(h: Harness, events: list[Any]) -> None:
    clock = Clock()
    cronjob(h, startingDeadlineSeconds=30)
    ctl = CronJobController(h.env, clock)
    clock.now = CREATED + dt.timedelta(minutes=5, seconds=40)  # 10:05 was 40 s ago
    run(h, ctl)
    assert jobs(h) == []
    # (As in Kubernetes, start times older than the deadline are not even looked for: no Job, no event.)
    assert not any(e[1] == "SuccessfulCreate" for e in events)
    clock.now = dt.datetime(2026, 12, 5, 10, 10, 10, tzinfo=UTC)  # the next start, 10 s ago: run
    run(h, ctl)
    assert [j["metadata"]["name"] for j in jobs(h)] == [job_name("tick", dt.datetime(2026, 12, 5, 10, 10,
                                                                                     tzinfo=UTC))]


def test_history_limits_delete_the_oldest_finished_jobs(h: Harness, events: list[Any]) -> None:
    clock = Clock()
    cronjob(h, successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    ctl = CronJobController(h.env, clock)
    for minutes in (5, 10, 15):
        clock.now = CREATED + dt.timedelta(minutes=minutes)
        run(h, ctl)
        latest = [j for j in jobs(h) if not j["metadata"].get("deletionTimestamp")][-1]["metadata"]["name"]
        finish(h, latest, "Failed" if minutes == 10 else "Complete", clock.now)
    run(h, ctl)
    left = [j["metadata"]["name"] for j in jobs(h) if not j["metadata"].get("deletionTimestamp")]
    assert left == [job_name("tick", dt.datetime(2026, 12, 5, 10, 15, tzinfo=UTC))]
