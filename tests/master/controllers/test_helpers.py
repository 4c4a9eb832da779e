"""Pure helpers of the controllers: expectations, deployment arithmetic, jobs, daemon sets, eviction."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from typing import Any

from master.controllers import eviction, podutil, templatehash
from master.controllers.daemonset import plan as dsutil
from master.controllers.deployment import util as deployutil
from master.controllers.endpoints import subsets_for
from master.controllers.expectations import Expectations
from master.controllers.job import progress as jobutil

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_expectations() -> None:
    e = Expectations()
    assert e.satisfied("rs")
    e.expect("rs", adds=2, deletions={"ns/p1"})
    e.creation_observed("rs")
    e.creation_observed("rs")
    assert not e.satisfied("rs")
    e.deletion_observed("rs", "ns/p1")
    assert e.satisfied("rs")
    short = Expectations(ttl=0.0)
    short.expect("rs", adds=5)
    time.sleep(0.01)
    assert short.satisfied("rs"), "an expectation that never comes true expires"


def deployment(replicas: int, surge: Any = "25%", unavailable: Any = "25%") -> dict[str, Any]:
    return {"metadata": {"name": "d", "generation": 1},
            "spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": surge, "maxUnavailable": unavailable}}}}


def rs(replicas: int, available: int = 0) -> dict[str, Any]:
    return {"metadata": {}, "spec": {"replicas": replicas}, "status": {"availableReplicas": available}}


def test_fenceposts_round_like_kubernetes() -> None:
    assert deployutil.fenceposts(deployment(10)) == (3, 2)  # surge rounds up, unavailable down
    assert deployutil.fenceposts(deployment(1, 0, 0)) == (0, 1)  # never both zero
    assert deployutil.max_unavailable(deployment(2, 0, 5)) == 2
    assert deployutil.new_rs_replicas(deployment(4, 1, 1), [rs(4), rs(0)], rs(0)) == 1
    assert deployutil.new_rs_replicas(deployment(4, 1, 1), [rs(4), rs(1)], rs(1)) == 1  # at the surge limit


def test_available_never_counts_more_than_asked() -> None:
    assert deployutil.available(rs(2, available=3)) == 2  # status lags a scale-down


def test_template_hash_is_stable_and_semantic() -> None:
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    roundtrip = {"metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
                 "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}}
    assert templatehash.template_hash(t) == templatehash.template_hash(roundtrip)
    assert templatehash.template_hash(t) != templatehash.template_hash(t, collision_count=1)
    assert deployutil.equal_ignore_hash(
        {**t, "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}}}, roundtrip)
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in templatehash.template_hash(t))


def test_revision_annotations_and_change_cause_copied() -> None:
    d = deployment(3)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2", deployutil.REVISION: "7",
                                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    new = rs(0)
    assert deployutil.set_new_rs_annotations(d, new, 3, exists=False)
    a = new["metadata"]["annotations"]
    assert a[deployutil.REVISION] == "3" and a["kubernetes.io/change-cause"] == "v2"
    assert a[deployutil.DESIRED_REPLICAS] == "3" and a[deployutil.MAX_REPLICAS] == "4"
    assert "kubectl.kubernetes.io/last-applied-configuration" not in a
    assert deployutil.set_new_rs_annotations(d, new, 5, exists=True)  # rolled back to: a new revision
    assert new["metadata"]["annotations"][deployutil.REVISION_HISTORY] == "3"
    assert not deployutil.set_new_rs_annotations(d, new, 5, exists=True)


def job(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never"}}, **spec},
            "status": {"startTime": "2026-01-01T00:00:00Z"}}


_uids = itertools.count()


def pod(phase: str = "Running", ready: bool = False, restarts: int = 0, **meta: Any) -> dict[str, Any]:
    """A pod as the Job controller makes it: a uid of its own, and the finalizer that has its end counted."""
    return {"metadata": {"name": "p", "uid": f"u{next(_uids)}", "finalizers": [jobutil.TRACKING_FINALIZER], **meta},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_job_verdicts() -> None:
    j = job(completions=3, parallelism=2, backoffLimit=1)
    c = jobutil.counts(j, [pod("Succeeded"), pod("Running"), pod("Failed")])
    assert c.wanted(j) == 2 and c.verdict(j, NOW) is None
    c = jobutil.counts(j, [pod("Failed"), pod("Failed")])
    assert c.verdict(j, NOW) == ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    c = jobutil.counts(j, [pod("Succeeded") for _ in range(3)])
    assert c.verdict(j, NOW) is not None and c.verdict(j, NOW)[0] == "Complete"  # type: ignore[index]
    late = job(activeDeadlineSeconds=10)
    assert jobutil.counts(late, []).verdict(late, NOW) is None
    verdict = jobutil.counts(late, []).verdict(late, NOW + dt.timedelta(seconds=11))
    assert verdict is not None and verdict[1] == "DeadlineExceeded"
    flaky = job(backoffLimit=2)
    flaky["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert jobutil.counts(flaky, [pod(restarts=1)]).verdict(flaky, NOW) is None
    assert jobutil.counts(flaky, [pod(restarts=2)]).verdict(flaky, NOW) is not None
    work_queue = job(parallelism=3)
    assert jobutil.counts(work_queue, []).wanted(work_queue) == 3


def test_job_counts_each_finished_pod_once() -> None:
    """The status's counts, plus its uncounted uids, plus pods that finished and still carry the finalizer."""
    j = job(completions=5)
    j["status"].update({"succeeded": 2, "failed": 1, "uncountedTerminatedPods": {"succeeded": ["s1"]}})
    listed = pod("Succeeded", uid="s1")
    fresh, failed, deleted = pod("Succeeded"), pod("Failed"), pod("Running", deletionTimestamp="2026-01-01T00:00:00Z")
    untracked = {**pod("Succeeded"), "metadata": {"name": "p", "uid": "old"}}  # counted before, finalizer gone
    c = jobutil.counts(j, [listed, fresh, failed, deleted, untracked, pod("Running")])
    assert (c.succeeded, c.failures, len(c.active)) == (4, 3, 1), "a pod deleted before it finished failed"
    assert c.uncounted.succeeded == ["s1", fresh["metadata"]["uid"]]
    assert c.uncounted.failed == [failed["metadata"]["uid"], deleted["metadata"]["uid"]]
    assert c.untrack == [listed, fresh, failed, deleted]
    c.uncounted.keep(c.carrying - {"s1", failed["metadata"]["uid"]})  # these two finalizers are gone now
    assert c.uncounted.doc() == {"succeeded": [fresh["metadata"]["uid"]], "failed": [deleted["metadata"]["uid"]]}
    status = jobutil.make_status(j, c, None, 1, 0, managed=True)
    assert (status["succeeded"], status["failed"]) == (3, 2) and status["uncountedTerminatedPods"] == c.uncounted.doc()
    lagging = jobutil.counts(j, [fresh], removing=frozenset({fresh["metadata"]["uid"]}))
    assert lagging.succeeded == 3 and not lagging.untrack, "a removal the cache has not shown yet: counted already"


def test_job_backoff_doubles() -> None:
    failed = [{"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "status": {"containerStatuses": [
        {"state": {"terminated": {"finishedAt": "2026-01-01T00:00:00Z"}}}]}}]
    assert jobutil.backoff_left(failed, 10, NOW) == 10
    assert jobutil.backoff_left(failed * 3, 10, NOW) == 40
    assert jobutil.backoff_left(failed * 20, 10, NOW) == jobutil.MAX_BACKOFF
    assert jobutil.backoff_left(failed, 10, NOW + dt.timedelta(seconds=11)) == 0


def test_daemonset_plan() -> None:
    nodes = [{"metadata": {"name": n, "labels": {"role": r}}, "spec": {"taints": t}} for n, r, t in (
        ("a", "edge", []), ("b", "edge", [{"key": "x", "effect": "NoSchedule"}]), ("c", "core", []),
        ("d", "edge", [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]))]
    template = {"spec": {"nodeSelector": {"role": "edge"}}}
    on_c = {"metadata": {"name": "p"}, "spec": {"nodeName": "c"}, "status": {}}
    plans = {p.node["metadata"]["name"]: p for p in dsutil.plan_nodes(nodes, [on_c], template)}
    assert [n for n, p in plans.items() if p.should_run] == ["a", "d"]
    assert [n for n, p in plans.items() if p.may_stay] == ["a", "b", "d"], "a NoSchedule taint only keeps new pods off"
    assert plans["c"].pods == [on_c] and not plans["c"].should_run
    status = dsutil.status_for({"metadata": {}, "spec": {}}, list(plans.values()), "h", NOW)
    assert status["desiredNumberScheduled"] == 2 and status["numberMisscheduled"] == 1


def test_eviction_deadlines() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}
    tolerate = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction.deadline({"spec": {}}, [taint], NOW) == NOW
    assert eviction.deadline({"spec": {"tolerations": [tolerate]}}, [taint], NOW) is None
    timed = {**tolerate, "tolerationSeconds": 30}
    assert eviction.deadline({"spec": {"tolerations": [timed]}}, [taint], NOW) == NOW + dt.timedelta(seconds=30)
    blanket = {"operator": "Exists"}
    assert eviction.deadline({"spec": {"tolerations": [timed, blanket]}}, [taint], NOW) == \
        NOW + dt.timedelta(seconds=30), "the first toleration that matches a taint is the one that counts"
    assert eviction.deadline({"spec": {"tolerations": [blanket, timed]}}, [taint], NOW) is None
    other = {"key": "maintenance", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:10Z"}
    assert eviction.deadline({"spec": {"tolerations": [timed, {**blanket, "tolerationSeconds": 5}]}},
                             [taint, other], NOW) == NOW + dt.timedelta(seconds=15), "the earliest over the taints"


def test_endpoint_subsets() -> None:
    svc = {"spec": {"ports": [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}

    def p(ip: str, port: int, ready: bool, **meta: Any) -> dict[str, Any]:
        return {"metadata": {"name": ip, "namespace": "n", "uid": ip, **meta},
                "spec": {"nodeName": "a", "containers": [{"ports": [{"name": "http", "containerPort": port}]}]},
                "status": {"podIP": ip, "phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}

    subsets = subsets_for(svc, [p("10.0.0.2", 80, True), p("10.0.0.3", 80, False), p("10.0.0.4", 81, True),
                                p("10.0.0.5", 80, True, deletionTimestamp="x")])
    assert [[a["ip"] for a in s.get("addresses", [])] for s in subsets] == [["10.0.0.2"], ["10.0.0.4"]]
    assert subsets[0]["notReadyAddresses"][0]["ip"] == "10.0.0.3"
    assert subsets[0]["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]


def test_endpoint_hostnames_come_from_pods_whose_subdomain_names_the_service() -> None:
    svc = {"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}}

    def p(ip: str, **spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": ip, "namespace": "default"}, "spec": spec,
                "status": {"podIP": ip, "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}

    subsets = subsets_for(svc, [p("10.0.0.2", hostname="db-0", subdomain="db"),
                                p("10.0.0.3", hostname="other", subdomain="elsewhere"), p("10.0.0.4")])
    assert [a.get("hostname") for a in subsets[0]["addresses"]] == ["db-0", None, None]


def test_deletion_rank_prefers_unready_unscheduled_newest() -> None:
    def p(name: str, node: str, ready: bool, created: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node},
                "status": {"phase": "Running" if node else "Pending",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                           "lastTransitionTime": created}]}}

    pods = [p("old-ready", "a", True, "2026-01-01T00:00:00Z"), p("new-ready", "a", True, "2026-01-02T00:00:00Z"),
            p("unready", "a", False, "2026-01-01T00:00:00Z"), p("pending", "", False, "2026-01-01T00:00:00Z")]
    assert [x["metadata"]["name"] for x in sorted(pods, key=podutil.deletion_rank)] == [
        "pending", "unready", "new-ready", "old-ready"]


def test_slow_start_stops_after_a_failed_batch() -> None:
    from master.controllers.slowstart import slow_start

    calls: list[int] = []

    def create(i: int) -> None:
        calls.append(i)
        if len(calls) >= 4:
            raise RuntimeError("quota exceeded")

    attempted, error = slow_start(100, create)
    assert attempted == 7 and len(calls) == 7, "batches of 1, 2, 4: the failing batch is the last"
    assert isinstance(error, RuntimeError)
    calls.clear()
    assert slow_start(10, lambda i: calls.append(i)) == (10, None)
    assert sorted(calls) == list(range(10))
