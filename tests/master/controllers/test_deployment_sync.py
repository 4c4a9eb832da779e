"""The Deployment controller (`deployment.py`, `rollout.py`, `deploystatus.py`, `deployutil.py`) driven by hand.

The ReplicaSet controller runs beside it on the same caches (`direct.py`), so a rollout moves
exactly as far as the pods the test marks Ready allow: every step of a rolling update can be
checked against maxSurge and maxUnavailable, a Recreate can be caught with old pods still
terminating, and a scaling event can be made in the middle of a rollout. Covered: the new
ReplicaSet's name, hash label and revision; RollingUpdate and Recreate; pause; rollback to an
earlier template; proportional scaling; revisionHistoryLimit; the status and its conditions.
Numbers expected here are worked out with Kubernetes' own arithmetic, not read off this code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import errors
from master.controllers.base import Controller
from master.controllers.deployment.controller import DeploymentController
from master.controllers.deployment.util import DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, REVISION, REVISION_HISTORY
from master.controllers.replicaset import ReplicaSetController
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
def dc(h: Harness) -> DeploymentController:
    return h.build(DeploymentController)


@pytest.fixture
def rsc(h: Harness) -> ReplicaSetController:
    return h.build(ReplicaSetController)


def pod_template(image: str) -> Obj:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}


def make_deployment(h: Harness, replicas: int, strategy: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("nginx:1"),
                 **spec}
    if strategy is not None:
        body["strategy"] = strategy
    return h.client.create(h.kinds.deployments, NS, {"metadata": {"name": "web"}, "spec": body})


def rolling(surge: int | str, unavailable: int | str) -> Obj:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


def patch_spec(h: Harness, spec: Obj) -> None:
    h.client.patch(h.kinds.deployments, NS, "web", {"spec": spec})


def set_image(h: Harness, image: str) -> None:
    patch_spec(h, {"template": pod_template(image)})


def run(h: Harness, c: Controller) -> None:
    """`h.run`, except that a Conflict (a write based on a cache the store has moved past) ends the turn quietly:
    a worker retries it later, here the next round's catch-up and resync do."""
    with contextlib.suppress(errors.Conflict):
        h.run(c)


def settle(h: Harness, *controllers: Controller, check: Callable[[], None] | None = None, rounds: int = 30) -> None:
    """Catch up and sync each controller in turn (with every key re-queued) until nothing changes in the store;
    `check` runs after every controller's turn."""
    for _ in range(rounds):
        before = h.store.revision()
        for c in controllers:
            h.catch_up()
            for key in c.resync_keys():
                c.queue.add(key)
            run(h, c)
            if check is not None:
                check()
        if h.store.revision() == before:
            return
    raise AssertionError(f"no steady state in {rounds} rounds")


def deployment(h: Harness) -> Obj:
    d = h.client.get(h.kinds.deployments, NS, "web")
    assert d is not None
    return d


def replicasets(h: Harness) -> list[Obj]:
    """The deployment's ReplicaSets, oldest revision first."""
    return sorted(h.client.list(h.kinds.replicasets, NS),
                  key=lambda rs: int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")))


def image_of(rs: Obj) -> str:
    return str(rs["spec"]["template"]["spec"]["containers"][0]["image"])


def sizes(h: Harness) -> dict[str, int]:
    """image -> spec.replicas of its ReplicaSet."""
    return {image_of(rs): int(rs["spec"]["replicas"]) for rs in replicasets(h)}


def live_pods(h: Harness) -> list[Obj]:
    return [p for p in h.client.list(h.kinds.pods, NS)
            if not p["metadata"].get("deletionTimestamp") and p["status"].get("phase") not in ("Succeeded", "Failed")]


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or [])


def mark_ready(h: Harness) -> int:
    """Every live pod not yet Ready becomes Running and Ready (long enough ago to be available); how many."""
    n = 0
    for p in live_pods(h):
        if not is_ready(p):
            h.client.patch(h.kinds.pods, NS, p["metadata"]["name"], {"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}]}}, subresource="status")
            n += 1
    return n


def condition(obj: Obj, kind: str) -> Obj:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind]
    assert len(found) == 1, f"one {kind} condition expected in {obj.get('status')}"
    first: Obj = found[0]
    return first


def roll_out(h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    """Drive the current rollout to its end, every new pod becoming Ready as soon as it exists."""
    for _ in range(20):
        settle(h, dc, rsc)
        if not mark_ready(h):
            return
    raise AssertionError("the rollout did not finish")


def test_creates_a_replicaset_named_and_labelled_by_the_template_hash(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    d = make_deployment(h, 3)
    h.client.patch(h.kinds.deployments, NS, "web", {"metadata": {"annotations": {
        "kubernetes.io/change-cause": "first"}}})
    h.catch_up()
    dc.sync(KEY)
    [rs] = replicasets(h)
    m, spec = rs["metadata"], rs["spec"]
    pod_hash = m["labels"][HASH_LABEL]
    assert m["name"] == f"web-{pod_hash}"
    assert spec["selector"] == {"matchLabels": {"app": "web", HASH_LABEL: pod_hash}}
    assert spec["template"]["metadata"]["labels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert spec["replicas"] == 3
    assert m["annotations"][REVISION] == "1"
    assert m["annotations"][DESIRED_REPLICAS] == "3" and m["annotations"][MAX_REPLICAS] == "4", "25% surge of 3: 1"
    assert m["annotations"]["kubernetes.io/change-cause"] == "first", "kubectl rollout history reads it there"
    assert [(r["kind"], r["uid"], r["controller"]) for r in m["ownerReferences"]] == \
        [("Deployment", d["metadata"]["uid"], True)]
    now = deployment(h)
    assert now["metadata"]["annotations"][REVISION] == "1"
    assert condition(now, "Progressing")["reason"] == "NewReplicaSetCreated"
    settle(h, dc, rsc)
    pods = live_pods(h)
    assert len(pods) == 3 and {p["metadata"]["labels"][HASH_LABEL] for p in pods} == {pod_hash}
    assert len(replicasets(h)) == 1, "later syncs find the ReplicaSet, they do not make another"


def test_a_different_template_gets_a_different_hash(h: Harness, dc: DeploymentController,
                                                    rsc: ReplicaSetController) -> None:
    make_deployment(h, 1)
    settle(h, dc, rsc)
    set_image(h, "nginx:2")
    settle(h, dc, rsc)
    first, second = replicasets(h)
    assert first["metadata"]["labels"][HASH_LABEL] != second["metadata"]["labels"][HASH_LABEL]
    assert [image_of(first), image_of(second)] == ["nginx:1", "nginx:2"]
    assert second["metadata"]["annotations"][REVISION] == "2"
    assert deployment(h)["metadata"]["annotations"][REVISION] == "2"


@pytest.mark.parametrize(("surge", "unavailable", "steps"), [
    (1, 0, [(4, 1), (3, 2), (2, 3), (1, 4), (0, 4)]),
    (0, 1, [(3, 1), (2, 2), (1, 3), (0, 4)]),
    ("50%", "25%", [(3, 3), (0, 4)]),
])
def test_rolling_update_stays_within_max_surge_and_max_unavailable(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController,
        surge: int | str, unavailable: int | str, steps: list[tuple[int, int]]) -> None:
    """Checked after every controller's turn: never more than replicas + maxSurge pods (or ReplicaSet replicas),
    never fewer than replicas - maxUnavailable ready ones; each batch of new pods becoming Ready moves it on."""
    make_deployment(h, 4, rolling(surge, unavailable))
    roll_out(h, dc, rsc)
    most = 4 + (2 if surge == "50%" else int(surge))
    least = 4 - (1 if unavailable == "25%" else int(unavailable))

    def within_bounds() -> None:
        total = sum(sizes(h).values())
        pods = live_pods(h)
        assert total <= most, f"ReplicaSets ask for {total} pods, more than {most}"
        assert len(pods) <= most, f"{len(pods)} pods, more than {most}"
        assert sum(1 for p in pods if is_ready(p)) >= least, f"fewer than {least} ready pods"

    set_image(h, "nginx:2")
    seen: list[tuple[int, int]] = []
    while len(seen) < 10 and (not seen or seen[-1] != (0, 4)):
        settle(h, dc, rsc, check=within_bounds)
        seen.append((sizes(h)["nginx:1"], sizes(h)["nginx:2"]))
        assert mark_ready(h) or seen[-1] == (0, 4), "stuck with no pod to get ready"
    assert seen == steps


def test_a_broken_old_version_does_not_block_the_rollout(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    """Old pods that never became ready are scaled down first, within the budget maxUnavailable leaves."""
    make_deployment(h, 4, rolling(1, 1))
    settle(h, dc, rsc)  # no pod of nginx:1 ever gets ready
    set_image(h, "nginx:2")
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 3, "nginx:2": 2}
    mark_ready_images(h, "nginx:2")
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 1, "nginx:2": 4}
    mark_ready_images(h, "nginx:2")
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 0, "nginx:2": 4}


def mark_ready_images(h: Harness, image: str) -> None:
    for p in live_pods(h):
        if p["spec"]["containers"][0]["image"] == image and not is_ready(p):
            h.client.patch(h.kinds.pods, NS, p["metadata"]["name"], {"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}]}}, subresource="status")


def test_recreate_scales_the_old_to_zero_and_waits_for_its_pods_to_go(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 3, {"type": "Recreate"})
    roll_out(h, dc, rsc)
    for p in live_pods(h):  # on a node: deleting them is graceful, they linger while terminating
        h.client.bind(NS, p["metadata"]["name"], "pi-1")
    set_image(h, "nginx:2")
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 0}, "no new ReplicaSet while old pods are still terminating"
    terminating = [p for p in h.client.list(h.kinds.pods, NS) if p["metadata"].get("deletionTimestamp")]
    assert len(terminating) == 3
    for p in terminating[:2]:
        h.client.delete(h.kinds.pods, NS, p["metadata"]["name"], grace=0)
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 0}, "one old pod is still there"
    h.client.delete(h.kinds.pods, NS, terminating[2]["metadata"]["name"], grace=0)
    h.catch_up()
    assert h.run(dc) == [KEY], "the last old pod going away wakes the deployment"
    assert sizes(h) == {"nginx:1": 0, "nginx:2": 3}
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 0, "nginx:2": 3}, "then the new one at full size at once"
    assert len(live_pods(h)) == 3


def test_a_paused_deployment_does_not_roll_but_still_scales(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 2)
    roll_out(h, dc, rsc)
    patch_spec(h, {"paused": True})
    settle(h, dc, rsc)
    assert condition(deployment(h), "Progressing")["reason"] == "DeploymentPaused"
    set_image(h, "nginx:2")
    patch_spec(h, {"replicas": 5})
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 5}, "scaled, but no new ReplicaSet"
    assert len(live_pods(h)) == 5
    patch_spec(h, {"paused": False})
    roll_out(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 0, "nginx:2": 5}
    assert condition(deployment(h), "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_rolling_back_to_an_earlier_template_reuses_its_replicaset(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    """What `kubectl rollout undo` does: the earlier template comes back, and its ReplicaSet gets a new revision."""
    make_deployment(h, 2)
    roll_out(h, dc, rsc)
    first = replicasets(h)[0]["metadata"]["name"]
    set_image(h, "nginx:2")
    roll_out(h, dc, rsc)
    set_image(h, "nginx:1")
    roll_out(h, dc, rsc)
    sets = replicasets(h)
    assert len(sets) == 2, "no third ReplicaSet"
    back = sets[-1]
    assert back["metadata"]["name"] == first and image_of(back) == "nginx:1"
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"][REVISION_HISTORY] == "1"
    assert deployment(h)["metadata"]["annotations"][REVISION] == "3"
    assert sizes(h) == {"nginx:2": 0, "nginx:1": 2}


def test_status_follows_the_rollout(h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 4, rolling(1, 1))
    settle(h, dc, rsc)
    status = deployment(h)["status"]
    assert (status["replicas"], status["updatedReplicas"], status["unavailableReplicas"]) == (4, 4, 4)
    assert "availableReplicas" not in status
    assert condition(deployment(h), "Available")["status"] == "False"
    roll_out(h, dc, rsc)
    d = deployment(h)
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    assert {k: d["status"].get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                            "unavailableReplicas")} == {
        "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4, "availableReplicas": 4, "unavailableReplicas": None}
    assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    set_image(h, "nginx:2")
    settle(h, dc, rsc)
    d = deployment(h)
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"] == 2
    assert d["status"]["updatedReplicas"] == 2 and d["status"]["replicas"] == 5
    assert d["status"]["availableReplicas"] == 3
    assert condition(d, "Available")["status"] == "True", "3 available of 4 with maxUnavailable 1"
    assert condition(d, "Progressing")["reason"] == "ReplicaSetUpdated"


def test_progress_deadline_exceeded_is_reported_when_nothing_moves(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 2, progressDeadlineSeconds=60)
    settle(h, dc, rsc)  # the pods never get ready
    d = deployment(h)
    assert condition(d, "Progressing")["status"] == "True"
    conditions = [{**c, "lastUpdateTime": LONG_AGO} if c["type"] == "Progressing" else c
                  for c in d["status"]["conditions"]]
    h.client.update_status(h.kinds.deployments, {**d, "status": {**d["status"], "conditions": conditions}})
    h.catch_up()
    dc.sync(KEY)
    progressing = condition(deployment(h), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_revision_history_limit_deletes_the_oldest_old_replicasets(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 1, revisionHistoryLimit=1)
    for image in ("nginx:1", "nginx:2", "nginx:3"):
        set_image(h, image)
        roll_out(h, dc, rsc)
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:2": 0, "nginx:3": 1}, "one old revision kept: the newest"


def test_old_replicasets_are_kept_while_the_rollout_is_not_complete(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 1, rolling(1, 0), revisionHistoryLimit=0)
    roll_out(h, dc, rsc)
    set_image(h, "nginx:2")
    settle(h, dc, rsc)  # the new pod is not ready: nginx:1 still serves
    assert sizes(h) == {"nginx:1": 1, "nginx:2": 1}
    roll_out(h, dc, rsc)
    assert sizes(h) == {"nginx:2": 1}, "complete: no history kept"


@pytest.mark.parametrize(("replicas", "expected"), [(20, {"nginx:1": 14, "nginx:2": 9}),
                                                    (5, {"nginx:1": 5, "nginx:2": 3})])
def test_scaling_in_the_middle_of_a_rollout_is_proportional(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController, replicas: int,
        expected: dict[str, int]) -> None:
    """Mid-rollout at 8 old + 5 new (10 replicas, maxSurge 3): each ReplicaSet takes its share of the new
    total replicas + maxSurge, rounded (Kubernetes' getReplicaSetFraction: 8 * 23 / 13 = 14.2, 5 * 23 / 13 = 8.8;
    8 * 8 / 13 = 4.9, 5 * 8 / 13 = 3.1)."""
    make_deployment(h, 10, rolling(3, 2))
    roll_out(h, dc, rsc)
    set_image(h, "nginx:2")
    settle(h, dc, rsc)
    assert sizes(h) == {"nginx:1": 8, "nginx:2": 5}
    patch_spec(h, {"replicas": replicas})
    h.catch_up()
    dc.sync(KEY)
    assert sizes(h) == expected
    for rs in replicasets(h):
        assert rs["metadata"]["annotations"][DESIRED_REPLICAS] == str(replicas)
        assert rs["metadata"]["annotations"][MAX_REPLICAS] == str(replicas + 3)


def test_scaling_a_settled_deployment_resizes_only_its_new_replicaset(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 2)
    roll_out(h, dc, rsc)
    set_image(h, "nginx:2")
    roll_out(h, dc, rsc)
    patch_spec(h, {"replicas": 6})
    h.catch_up()
    dc.sync(KEY)
    assert sizes(h) == {"nginx:1": 0, "nginx:2": 6}


def test_adopts_a_matching_orphan_replicaset_instead_of_making_another(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    """As after `kubectl delete deployment --cascade=orphan` and applying it again."""
    make_deployment(h, 2)
    roll_out(h, dc, rsc)
    [before] = replicasets(h)
    h.client.delete(h.kinds.deployments, NS, "web")  # no garbage collector here: the ReplicaSet is left behind
    h.client.patch(h.kinds.replicasets, NS, before["metadata"]["name"], {"metadata": {"ownerReferences": None}})
    d = make_deployment(h, 2)
    settle(h, dc, rsc)
    [after] = replicasets(h)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert len(live_pods(h)) == 2


def test_a_sync_with_nothing_to_change_does_not_write_the_replicaset(
        h: Harness, dc: DeploymentController, rsc: ReplicaSetController) -> None:
    make_deployment(h, 2)
    roll_out(h, dc, rsc)
    pod = live_pods(h)[0]["metadata"]["name"]
    h.client.patch(h.kinds.pods, NS, pod, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
                   subresource="status")
    h.catch_up()
    h.run(rsc)  # the ReplicaSet's status changes; the deployment controller's cache has not seen it yet
    dc.sync(KEY)  # its cached view is settled: nothing to write
