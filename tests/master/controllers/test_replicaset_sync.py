"""The ReplicaSet controller, one `sync(key)` at a time, over an in-process store (`direct.py`).

What it promises: `spec.replicas` active pods stamped out of the template and owned by the set,
created in slow-start batches; expectations that keep a sync from acting again before the cache
has seen its own creations; surplus pods deleted least valuable first (unscheduled, not ready,
ready for the shortest time); orphans adopted and strays released; a status that counts
replicas, fully labelled, ready and available pods. These run in milliseconds, so the races
(a cache that lags the controller's writes) are states the test builds, not timings it hopes for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import errors
from core.kube.timefmt import now, rfc3339
from master.controllers.podutil import owner_ref
from master.controllers.replicaset import ReplicaSetController
from master.registry.resource import ResourceType
from tests.master.controllers.direct import Harness, harness

Obj = dict[str, Any]
NS = "default"
KEY = f"{NS}/web"
LONG_AGO = "2020-01-01T00:00:00Z"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path) as built:
        yield built


@pytest.fixture
def rsc(h: Harness) -> ReplicaSetController:
    return h.build(ReplicaSetController)


def template(labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}


def make_rs(h: Harness, replicas: int, labels: dict[str, str] | None = None, min_ready: int = 0,
            name: str = "web") -> Obj:
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(labels)}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return h.client.create(h.kinds.replicasets, NS, {"metadata": {"name": name}, "spec": spec})


def scale(h: Harness, replicas: int) -> None:
    h.client.patch(h.kinds.replicasets, NS, "web", {"spec": {"replicas": replicas}})


def step(h: Harness, rsc: ReplicaSetController) -> list[str]:
    """Every cache catches up, then the keys that queued are synced."""
    h.catch_up()
    return h.run(rsc)


def pods(h: Harness) -> list[Obj]:
    return h.client.list(h.kinds.pods, NS)


def active_names(h: Harness) -> set[str]:
    return {p["metadata"]["name"] for p in pods(h) if not p["metadata"].get("deletionTimestamp")}


def pod(h: Harness, name: str) -> Obj:
    found = h.client.get(h.kinds.pods, NS, name)
    assert found is not None, f"pod {name} is gone"
    return found


def rs_status(h: Harness) -> Obj:
    rs = h.client.get(h.kinds.replicasets, NS, "web")
    assert rs is not None
    status: Obj = rs.get("status") or {}
    return status


def set_status(h: Harness, name: str, status: Obj) -> None:
    h.client.patch(h.kinds.pods, NS, name, {"status": status}, subresource="status")


def make_running(h: Harness, name: str, ready: bool, since: str = LONG_AGO) -> None:
    """Bound to a node and Running; Ready (since `since`) or not."""
    if not pod(h, name)["spec"].get("nodeName"):
        h.client.bind(NS, name, "pi-1")
    set_status(h, name, {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": since}]})


def event_reasons(h: Harness) -> list[str]:
    """Reasons of the events recorded so far (no writer thread runs: they wait in the recorder's queue)."""
    return [e.reason for e in list(h.env.recorder._queue.queue)]


def test_creates_the_missing_pods_from_the_template(h: Harness, rsc: ReplicaSetController) -> None:
    rs = make_rs(h, 3, labels={"app": "web", "tier": "front"})
    assert step(h, rsc) == [KEY]
    made = pods(h)
    assert len(made) == 3
    for p in made:
        m = p["metadata"]
        assert m["name"].startswith("web-") and m["labels"] == {"app": "web", "tier": "front"}
        assert m["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                         "uid": rs["metadata"]["uid"], "controller": True,
                                         "blockOwnerDeletion": True}]
        assert [c["image"] for c in p["spec"]["containers"]] == ["nginx:1"]
    assert event_reasons(h).count("SuccessfulCreate") == 3


def test_a_second_sync_before_the_cache_sees_the_creations_creates_nothing(
        h: Harness, rsc: ReplicaSetController) -> None:
    """The pod cache still shows no pods: only the expectations stop the second sync doubling them."""
    make_rs(h, 3)
    h.catch_up()
    rsc.sync(KEY)
    assert len(pods(h)) == 3
    h.catch_up("replicasets")  # the set's own status write; the pod cache lags
    rsc.sync(KEY)
    assert len(pods(h)) == 3, "the creations are expected, not yet seen: nothing more is made"
    h.catch_up()  # the cache sees them: expectations met, and nothing is missing either
    rsc.sync(KEY)
    assert len(pods(h)) == 3
    assert rsc.expectations.satisfied(KEY)


def test_slow_start_makes_one_call_when_every_creation_fails(
        h: Harness, rsc: ReplicaSetController, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template the API rejects fails once, not `replicas` times; the failure shows in the status."""
    make_rs(h, 8)
    h.catch_up()
    calls: list[str] = []
    real_create = h.client.create

    def refuse_pods(rt: ResourceType, ns: str, obj: Obj) -> Obj:
        if rt.plural == "pods":
            calls.append(ns)
            raise errors.Invalid(message="pods are refused")
        return real_create(rt, ns, obj)

    monkeypatch.setattr(h.client, "create", refuse_pods)
    with pytest.raises(errors.Invalid):
        rsc.sync(KEY)
    assert len(calls) == 1
    failure = [c for c in rs_status(h).get("conditions") or [] if c["type"] == "ReplicaFailure"]
    assert failure and failure[0]["status"] == "True" and failure[0]["reason"] == "FailedCreate"
    assert "FailedCreate" in event_reasons(h)
    monkeypatch.setattr(h.client, "create", real_create)
    h.catch_up("replicasets")
    rsc.sync(KEY)  # nothing was created, so nothing is expected: the next sync tries again at once
    assert len(pods(h)) == 8
    step(h, rsc)
    assert not [c for c in rs_status(h).get("conditions") or [] if c["type"] == "ReplicaFailure"], \
        "the failure condition goes once creations work"


def test_slow_start_batches_double_and_stop_at_the_first_failing_one(
        h: Harness, rsc: ReplicaSetController, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 1, 2, 4: the third call (in the batch of 2) fails, so the batch of 4 never starts.

    The two pods made are expected; the failed and skipped creations are not, so the
    next sync waits only for those two to reach the cache, then makes the rest.
    """
    make_rs(h, 8)
    h.catch_up()
    lock = threading.Lock()
    calls: list[int] = []
    real_create = h.client.create

    def third_fails(rt: ResourceType, ns: str, obj: Obj) -> Obj:
        if rt.plural == "pods":
            with lock:
                calls.append(len(calls) + 1)
                n = len(calls)
            if n >= 3:
                raise errors.ServiceUnavailable(message="the store is busy")
        return real_create(rt, ns, obj)

    monkeypatch.setattr(h.client, "create", third_fails)
    with pytest.raises(errors.ServiceUnavailable):
        rsc.sync(KEY)
    assert len(calls) == 3 and len(pods(h)) == 2
    monkeypatch.setattr(h.client, "create", real_create)
    h.catch_up("replicasets")
    rsc.sync(KEY)
    assert len(pods(h)) == 2, "the two creations made are not in the cache yet"
    h.catch_up()
    rsc.sync(KEY)
    assert len(pods(h)) == 8


def test_scale_down_deletes_the_least_valuable_pods_first(h: Harness, rsc: ReplicaSetController) -> None:
    """Unscheduled before scheduled, not ready before ready, ready for a shorter time before longer."""
    make_rs(h, 4)
    step(h, rsc)
    unscheduled, not_ready, ready_lately, ready_long = sorted(active_names(h))
    make_running(h, not_ready, ready=False)
    make_running(h, ready_lately, ready=True, since="2024-06-01T00:00:00Z")
    make_running(h, ready_long, ready=True, since="2023-01-01T00:00:00Z")
    step(h, rsc)
    order: list[str] = []
    for size in (3, 2, 1):
        before = active_names(h)
        scale(h, size)
        step(h, rsc)
        gone = before - active_names(h)
        assert len(gone) == 1, f"scaling to {size} deletes exactly one pod"
        order += gone
    assert order == [unscheduled, not_ready, ready_lately]
    assert active_names(h) == {ready_long}
    assert h.client.get(h.kinds.pods, NS, unscheduled) is None, "an unscheduled pod goes at once"
    assert pod(h, ready_lately)["metadata"].get("deletionTimestamp"), "a running one is deleted gracefully"
    step(h, rsc)
    assert rs_status(h)["replicas"] == 1, "pods being deleted are not counted"


def test_more_restarts_are_deleted_first_among_equals(h: Harness, rsc: ReplicaSetController) -> None:
    """Six pods alike but for one that restarted: that one goes (any other choice would be a 5-in-6 chance)."""
    make_rs(h, 6)
    step(h, rsc)
    names = sorted(active_names(h))
    flaky = names[3]
    for name in names:
        h.client.bind(NS, name, "pi-1")
        set_status(h, name, {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}], "containerStatuses": [
            {"name": "web", "restartCount": 3 if name == flaky else 0}]})
    scale(h, 5)
    step(h, rsc)
    assert active_names(h) == set(names) - {flaky}


def test_a_second_sync_does_not_delete_more_before_the_cache_sees_the_deletions(
        h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 3)
    step(h, rsc)
    for name in active_names(h):
        make_running(h, name, ready=True)
    scale(h, 2)
    h.catch_up()
    rsc.sync(KEY)
    assert len(active_names(h)) == 2
    scale(h, 1)
    h.catch_up("replicasets")  # the pod cache still shows three running pods
    rsc.sync(KEY)
    assert len(active_names(h)) == 2, "the deletion is still expected: nothing more is deleted"
    h.catch_up()
    rsc.sync(KEY)
    assert len(active_names(h)) == 1


def test_terminated_pods_do_not_count_and_are_replaced(h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 2)
    step(h, rsc)
    failed, succeeded = sorted(active_names(h))
    set_status(h, failed, {"phase": "Failed"})
    set_status(h, succeeded, {"phase": "Succeeded"})
    step(h, rsc)
    live = {p["metadata"]["name"] for p in pods(h) if p["status"].get("phase") == "Pending"}
    assert len(live) == 2 and not live & {failed, succeeded}
    assert h.client.get(h.kinds.pods, NS, failed) is not None, "a terminated pod is left for the GC, not deleted"
    step(h, rsc)
    assert rs_status(h)["replicas"] == 2


def test_adopts_a_matching_orphan_instead_of_creating_a_pod(h: Harness, rsc: ReplicaSetController) -> None:
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "stray", "labels": {"app": "web"}},
                                       "spec": template()["spec"]})
    rs = make_rs(h, 2)
    step(h, rsc)
    assert len(pods(h)) == 2, "the orphan counts towards the replicas"
    refs = pod(h, "stray")["metadata"]["ownerReferences"]
    assert [(r["kind"], r["uid"], r["controller"]) for r in refs] == [("ReplicaSet", rs["metadata"]["uid"], True)]


def test_an_orphan_appearing_later_wakes_the_set_which_adopts_it_and_deletes_the_surplus(
        h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 2)
    step(h, rsc)
    kept = active_names(h)
    for name in kept:
        make_running(h, name, ready=True)
    step(h, rsc)
    step(h, rsc)
    assert step(h, rsc) == [], "settled"
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "stray", "labels": {"app": "web"}},
                                       "spec": template()["spec"]})
    assert step(h, rsc) == [KEY], "a matching orphan brings the set to look"
    assert active_names(h) == kept, "adopted, then deleted as the least valuable of three"


def test_leaves_alone_a_matching_pod_controlled_by_another_owner(h: Harness, rsc: ReplicaSetController) -> None:
    other = make_rs(h, 0, name="other")
    h.client.create(h.kinds.pods, NS, {"metadata": {
        "name": "theirs", "labels": {"app": "web"}, "ownerReferences": [owner_ref(other, "apps/v1", "ReplicaSet")]},
        "spec": template()["spec"]})
    make_rs(h, 1)
    h.catch_up()
    rsc.sync(KEY)
    assert len(pods(h)) == 2, "another controller's pod is not ours to count"
    assert pod(h, "theirs")["metadata"]["ownerReferences"][0]["name"] == "other"


def test_releases_an_owned_pod_whose_labels_stop_matching(h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 2)
    step(h, rsc)
    leaving = sorted(active_names(h))[0]
    h.client.patch(h.kinds.pods, NS, leaving, {"metadata": {"labels": {"app": "debug"}}})
    step(h, rsc)
    released = pod(h, leaving)
    assert not released["metadata"].get("ownerReferences"), "released, not deleted"
    owned = [p for p in pods(h) if p["metadata"].get("ownerReferences")]
    assert len(owned) == 2 and leaving not in {p["metadata"]["name"] for p in owned}, "and replaced"


def test_a_deleting_replicaset_adopts_and_replaces_nothing(h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 2)
    step(h, rsc)
    h.client.delete(h.kinds.replicasets, NS, "web", propagation="Foreground")  # stays, with a finalizer
    for name in active_names(h):
        h.client.delete(h.kinds.pods, NS, name)
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "stray", "labels": {"app": "web"}},
                                       "spec": template()["spec"]})
    step(h, rsc)
    assert [p["metadata"]["name"] for p in pods(h)] == ["stray"]
    assert not pod(h, "stray")["metadata"].get("ownerReferences")


def test_status_counts_replicas_labels_readiness_and_generation(h: Harness, rsc: ReplicaSetController) -> None:
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "partial", "labels": {"app": "web"}},
                                       "spec": template()["spec"]})
    make_rs(h, 3, labels={"app": "web", "tier": "front"})
    step(h, rsc)
    created = sorted(active_names(h) - {"partial"})
    make_running(h, created[0], ready=True)
    make_running(h, created[1], ready=False)
    step(h, rsc)
    assert rs_status(h) == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                            "observedGeneration": 1}
    h.client.patch(h.kinds.replicasets, NS, "web", {"spec": {"template": template({"app": "web", "tier": "x"})}})
    step(h, rsc)
    assert rs_status(h) == {"replicas": 3, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 2}, \
        "a template change bumps the generation; no pod carries the new labels (zeros are omitted)"


def test_a_pod_is_available_only_min_ready_seconds_after_it_became_ready(
        h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 2)  # minReadySeconds only once a pod is ready (from the start: the test below)
    step(h, rsc)
    old, fresh = sorted(active_names(h))
    make_running(h, old, ready=True, since=LONG_AGO)
    make_running(h, fresh, ready=True, since=rfc3339(now()))
    h.client.patch(h.kinds.replicasets, NS, "web", {"spec": {"minReadySeconds": 3600}})
    step(h, rsc)
    status = rs_status(h)
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 1


def test_a_set_with_min_ready_seconds_and_no_ready_pod_reports_its_replicas(
        h: Harness, rsc: ReplicaSetController) -> None:
    make_rs(h, 2, min_ready=30)
    step(h, rsc)
    assert len(pods(h)) == 2
    step(h, rsc)
    assert rs_status(h) == {"replicas": 2, "fullyLabeledReplicas": 2, "observedGeneration": 1}


def test_a_deleted_replicaset_is_a_noop_that_forgets_its_expectations(
        h: Harness, rsc: ReplicaSetController) -> None:
    """A set recreated under the same name must not wait for creations its predecessor expected."""
    make_rs(h, 2)
    h.catch_up()
    rsc.sync(KEY)  # two creations expected; the pod cache never sees them
    assert not rsc.expectations.satisfied(KEY)
    h.client.delete(h.kinds.replicasets, NS, "web")
    h.catch_up("replicasets")
    rsc.sync(KEY)
    assert len(pods(h)) == 2, "nothing created or deleted for a set that is gone"
    assert rsc.expectations.satisfied(KEY)
    make_rs(h, 1)
    h.catch_up("replicasets")
    rsc.sync(KEY)
    mine = [p for p in pods(h) if p["metadata"]["ownerReferences"][0]["uid"] == rs_uid(h)]
    assert len(mine) == 1, "the new set creates its pod at once"


def rs_uid(h: Harness) -> str:
    rs = h.client.get(h.kinds.replicasets, NS, "web")
    assert rs is not None
    return str(rs["metadata"]["uid"])
