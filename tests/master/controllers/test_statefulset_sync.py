"""The StatefulSet controller one sync at a time: ordered and parallel starts, highest-first scale-down (one at a
time, waiting for each pod to go), partitioned rolling updates, OnDelete, failed pods made again, claims and their
retention owners (stale claims block a pod), revisions (history limit, rollback renumbering, name collisions);
and the API's rules for StatefulSets and ControllerRevisions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core import errors
from core.kube import timefmt
from master.controllers.statefulset.controller import (
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    StatefulSetController,
)
from master.controllers.statefulset.revisions import HASH_LABEL, new_revision
from master.registry.resource import ResourceType
from tests.master.controllers.direct import Harness

Obj = dict[str, Any]
NS = "default"


def sts_rt(h: Harness) -> ResourceType:
    rt = h.client.catalog.by_kind("apps", "StatefulSet")
    assert rt is not None
    return rt


def rev_rt(h: Harness) -> ResourceType:
    rt = h.client.catalog.by_kind("apps", "ControllerRevision")
    assert rt is not None
    return rt


def make(h: Harness, replicas: int = 3, **spec: Any) -> Obj:
    return h.client.create(sts_rt(h), NS, {"metadata": {"name": "db"}, "spec": {
        "replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}], **spec}})


def the_set(h: Harness) -> Obj:
    sts = h.client.get(sts_rt(h), NS, "db")
    assert sts is not None
    return sts


def change(h: Harness, **spec: Any) -> Obj:
    sts = the_set(h)
    return h.client.update(sts_rt(h), {**sts, "spec": {**sts["spec"], **spec}})


def set_image(h: Harness, image: str, **spec: Any) -> Obj:
    template = {**the_set(h)["spec"]["template"], "spec": {"containers": [{"name": "c", "image": image}]}}
    return change(h, template=template, **spec)


def pods(h: Harness, terminating: bool = False) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in h.client.list(h.kinds.pods, NS)
            if terminating or not p["metadata"].get("deletionTimestamp")}


def images(h: Harness) -> dict[str, str]:
    return {n: p["spec"]["containers"][0]["image"] for n, p in pods(h).items()}


def ready(h: Harness, *names: str, node: str = "") -> None:
    """Running and Ready (on `node`, so deleting it is graceful and leaves it terminating)."""
    for name in names:
        pod = h.client.get(h.kinds.pods, NS, name)
        assert pod is not None
        if node:
            pod = h.client.update(h.kinds.pods, {**pod, "spec": {**pod["spec"], "nodeName": node}})
        pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        h.client.update_status(h.kinds.pods, pod)


def claim_of(h: Harness, name: str) -> Obj:
    claim = h.client.get(h.kinds.persistentvolumeclaims, NS, name)
    assert claim is not None
    return claim


def owners(h: Harness, name: str) -> set[tuple[str, str, bool]]:
    return {(o["kind"], o["name"], bool(o.get("controller")))
            for o in claim_of(h, name)["metadata"].get("ownerReferences") or []}


def step(h: Harness, ctl: StatefulSetController) -> None:
    h.catch_up()
    ctl.sync(f"{NS}/db")
    h.catch_up()


def gone(h: Harness, *names: str) -> None:
    """The kubelet confirms these pods stopped: they leave the store."""
    for name in names:
        h.client.delete(h.kinds.pods, NS, name, grace=0)


def test_ordered_start_waits_for_each_pod_and_makes_its_claim_first(h: Harness, events: list[Any]) -> None:
    make(h)
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]  # db-0 is not ready: nothing more
    ready(h, "db-0")
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1"]
    pod = pods(h)["db-1"]
    assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["generateName"] == "db-"
    labels = pod["metadata"]["labels"]
    assert labels[POD_NAME_LABEL] == "db-1" and labels[POD_INDEX_LABEL] == "1"
    assert labels[REVISION_LABEL] == the_set(h)["status"]["updateRevision"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-1"}} in pod["spec"]["volumes"]
    claim = claim_of(h, "data-db-1")
    assert claim["metadata"]["labels"] == {"app": "db"}
    assert not claim["metadata"].get("ownerReferences")  # Retain: nobody owns it
    assert ("Normal", "SuccessfulCreate", "create Claim data-db-1 Pod db-1 in StatefulSet db success") in events
    assert ("Normal", "SuccessfulCreate", "create Pod db-1 in StatefulSet db successful") in events
    ready(h, "db-1")
    step(h, ctl)
    ready(h, "db-2")
    step(h, ctl)
    status = the_set(h)["status"]
    assert status["replicas"] == status["readyReplicas"] == status["currentReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"] and status["observedGeneration"] == 1


def test_ordinals_start_names_the_pods_from_there(h: Harness) -> None:
    make(h, replicas=2, podManagementPolicy="Parallel", ordinals={"start": 5})
    step(h, h.build(StatefulSetController))
    assert sorted(pods(h)) == ["db-5", "db-6"]
    assert pods(h)["db-5"]["metadata"]["labels"][POD_INDEX_LABEL] == "5"
    assert claim_of(h, "data-db-6")


def test_parallel_start_and_claims_handed_to_the_pods_scaled_away(h: Harness) -> None:
    make(h, podManagementPolicy="Parallel",
         persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1", "db-2"]
    step(h, ctl)
    assert owners(h, "data-db-0") == {("StatefulSet", "db", True)}
    ready(h, "db-0", "db-1", "db-2")
    change(h, replicas=1)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]
    # A claim of a pod scaled away is the pod's alone, so the garbage collector takes it with the pod.
    assert owners(h, "data-db-2") == {("Pod", "db-2", True)}
    assert owners(h, "data-db-0") == {("StatefulSet", "db", True)}


def test_a_changed_retention_policy_reaches_the_existing_claims(h: Harness) -> None:
    make(h, replicas=1)
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0")
    step(h, ctl)
    assert owners(h, "data-db-0") == set()
    change(h, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"})
    step(h, ctl)
    assert owners(h, "data-db-0") == {("StatefulSet", "db", True)}
    change(h, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Retain"})
    step(h, ctl)
    assert owners(h, "data-db-0") == set()


def test_a_claim_still_owned_by_a_pod_scaled_away_holds_the_new_pod_back(h: Harness) -> None:
    make(h, replicas=2, podManagementPolicy="Parallel",
         persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"})
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0", "db-1")
    change(h, replicas=1)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"] and owners(h, "data-db-1") == {("Pod", "db-1", True)}
    change(h, replicas=2)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]  # the garbage collector has not taken data-db-1 yet
    h.client.delete(h.kinds.persistentvolumeclaims, NS, "data-db-1")
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]  # still there, held by its protection finalizer
    h.client.patch(h.kinds.persistentvolumeclaims, NS, "data-db-1", {"metadata": {"finalizers": None}})
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1"]
    assert owners(h, "data-db-1") == set()  # a fresh claim, in range: nobody owns it


def test_a_claim_being_deleted_holds_its_pod_back(h: Harness, events: list[Any]) -> None:
    make(h, replicas=1)
    ctl = h.build(StatefulSetController)
    h.client.create(h.kinds.persistentvolumeclaims, NS, {"metadata": {
        "name": "data-db-0", "finalizers": ["example.com/hold"]}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    h.client.delete(h.kinds.persistentvolumeclaims, NS, "data-db-0")
    h.catch_up()
    with pytest.raises(errors.ApiError, match="pvc data-db-0 is being deleted"):
        ctl.sync(f"{NS}/db")
    assert pods(h) == {}
    assert any(e[1] == "FailedCreate" and "create Pod db-0 in StatefulSet db failed error: pvc data-db-0 is being "
               "deleted" in e[2] for e in events)
    h.client.patch(h.kinds.persistentvolumeclaims, NS, "data-db-0", {"metadata": {"finalizers": None}})
    assert h.client.get(h.kinds.persistentvolumeclaims, NS, "data-db-0") is None
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]


def test_ordered_scale_down_waits_for_each_pod_to_go(h: Harness, events: list[Any]) -> None:
    make(h)
    ctl = h.build(StatefulSetController)
    for name in ("db-0", "db-1", "db-2"):
        step(h, ctl)
        ready(h, name, node="pi-1")
    step(h, ctl)
    change(h, replicas=1)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1"] and "db-2" in pods(h, terminating=True)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1"]  # db-2 is still terminating: db-1 waits
    gone(h, "db-2")
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]
    assert [e[2] for e in events if e[1] == "SuccessfulDelete"] == ["delete Pod db-2 in StatefulSet db successful",
                                                                    "delete Pod db-1 in StatefulSet db successful"]


def test_parallel_scale_down_removes_every_surplus_pod_at_once(h: Harness) -> None:
    make(h, replicas=4, podManagementPolicy="Parallel")
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0", "db-1", "db-2", "db-3", node="pi-1")
    change(h, replicas=1)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]
    assert sorted(pods(h, terminating=True)) == ["db-0", "db-1", "db-2", "db-3"]


def test_a_failed_pod_is_made_again_under_its_name(h: Harness, events: list[Any]) -> None:
    make(h, replicas=1)
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    pod = pods(h)["db-0"]
    h.client.update_status(h.kinds.pods, {**pod, "status": {"phase": "Failed"}})
    step(h, ctl)
    again = pods(h)["db-0"]
    assert again["metadata"]["uid"] != pod["metadata"]["uid"]
    assert ("Warning", "RecreatingFailedPod", "StatefulSet default/db is recreating failed Pod db-0") in events


def test_pods_that_are_not_members_by_name_are_left_alone(h: Harness) -> None:
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "db-debug", "labels": {"app": "db"}}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    make(h, replicas=1)
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    debug = pods(h)["db-debug"]
    assert not debug["metadata"].get("ownerReferences")
    assert sorted(pods(h)) == ["db-0", "db-debug"]


def test_partitioned_rolling_update_replaces_only_the_pods_above_the_partition(h: Harness) -> None:
    make(h, podManagementPolicy="Parallel")
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0", "db-1", "db-2")
    step(h, ctl)
    first = the_set(h)["status"]["updateRevision"]
    set_image(h, "pg:2", updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    step(h, ctl)  # db-2 goes (it is unbound: at once)
    step(h, ctl)  # and comes back at the new revision
    assert images(h) == {"db-0": "pg", "db-1": "pg", "db-2": "pg:2"}
    step(h, ctl)
    assert images(h)["db-1"] == "pg"  # db-2 is not ready yet; and db-1 is below the partition anyway
    ready(h, "db-2")
    step(h, ctl)
    step(h, ctl)
    assert images(h) == {"db-0": "pg", "db-1": "pg", "db-2": "pg:2"}
    status = the_set(h)["status"]
    assert status["currentRevision"] == first and status["updateRevision"] != first
    assert status["updatedReplicas"] == 1 and status["currentReplicas"] == 2
    # A pod below the partition deleted by hand comes back at the current revision.
    gone(h, "db-0")
    step(h, ctl)
    assert images(h)["db-0"] == "pg"
    ready(h, "db-0")
    # Partition 0: the rest, from the top, one at a time.
    change(h, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-2"]
    step(h, ctl)
    assert images(h) == {"db-0": "pg", "db-1": "pg:2", "db-2": "pg:2"}
    step(h, ctl)
    assert images(h)["db-0"] == "pg"  # db-1 not ready: db-0 waits
    ready(h, "db-1")
    step(h, ctl)
    step(h, ctl)
    ready(h, "db-0")
    step(h, ctl)
    step(h, ctl)
    status = the_set(h)["status"]
    assert images(h) == {"db-0": "pg:2", "db-1": "pg:2", "db-2": "pg:2"}
    assert status["currentRevision"] == status["updateRevision"] and status["currentReplicas"] == 3


def test_on_delete_changes_a_pod_only_when_it_is_deleted(h: Harness) -> None:
    make(h, replicas=2, podManagementPolicy="Parallel", updateStrategy={"type": "OnDelete"})
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0", "db-1")
    step(h, ctl)
    first = the_set(h)["status"]["updateRevision"]
    set_image(h, "pg:2")
    step(h, ctl)
    step(h, ctl)
    assert set(images(h).values()) == {"pg"}  # nothing replaced
    h.client.delete(h.kinds.pods, NS, "db-1", grace=0)
    step(h, ctl)
    step(h, ctl)  # the status of what the first sync made
    assert images(h) == {"db-0": "pg", "db-1": "pg:2"}
    status = the_set(h)["status"]
    assert status["currentRevision"] == first
    assert status["updatedReplicas"] == 1 and status["currentReplicas"] == 1
    # Every pod replaced: as in Kubernetes, an OnDelete set's current revision stays where it was.
    gone(h, "db-0")
    step(h, ctl)
    ready(h, "db-0", "db-1")
    step(h, ctl)
    status = the_set(h)["status"]
    assert status["updatedReplicas"] == 2 and status["currentRevision"] == first


def test_revisions_are_kept_to_the_history_limit(h: Harness) -> None:
    make(h, replicas=1, revisionHistoryLimit=1)
    ctl = h.build(StatefulSetController)
    for image in ("pg:1", "pg:2", "pg:3"):
        set_image(h, image)
        for _ in range(2):
            step(h, ctl)
            ready(h, *pods(h))
        step(h, ctl)
    step(h, ctl)
    revisions = h.client.list(rev_rt(h), NS)
    sts = the_set(h)
    assert sts["status"]["updateRevision"] == sts["status"]["currentRevision"]
    # the one in use and one more (the limit); the first template's revision is gone
    assert sorted(r["revision"] for r in revisions) == [2, 3]
    assert sts["status"]["updateRevision"] in {r["metadata"]["name"] for r in revisions}
    assert pods(h)["db-0"]["metadata"]["labels"][REVISION_LABEL] == sts["status"]["updateRevision"]
    assert images(h)["db-0"] == "pg:3"


def test_a_revision_holds_the_template_and_going_back_renumbers_it(h: Harness) -> None:
    make(h, replicas=1, template={"metadata": {"labels": {"app": "db", "tier": "data"}},
                                  "spec": {"containers": [{"name": "c", "image": "pg"}]}})
    h.client.patch(sts_rt(h), NS, "db", {"metadata": {"annotations": {"kubernetes.io/change-cause": "first"}}})
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    (revision,) = h.client.list(rev_rt(h), NS)
    digest = revision["metadata"]["labels"][HASH_LABEL]
    assert revision["revision"] == 1 and revision["metadata"]["name"] == f"db-{digest}"
    assert revision["metadata"]["labels"]["tier"] == "data"  # the template's labels, not only the selector's
    assert revision["metadata"]["annotations"] == {"kubernetes.io/change-cause": "first"}
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "pg"
    owner = revision["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("StatefulSet", "db", True)
    set_image(h, "pg:2")
    step(h, ctl)
    set_image(h, "pg")  # back to the first template (what `kubectl rollout undo` does)
    step(h, ctl)
    numbers = {r["metadata"]["name"]: r["revision"] for r in h.client.list(rev_rt(h), NS)}
    assert len(numbers) == 2 and numbers[revision["metadata"]["name"]] == 3
    assert the_set(h)["status"]["updateRevision"] == revision["metadata"]["name"]


def test_a_revision_name_taken_by_other_data_moves_the_collision_count(h: Harness) -> None:
    sts = make(h, replicas=1)
    ctl = h.build(StatefulSetController)
    squatter = new_revision(sts, 1, {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u1",
                                     "controller": True})
    squatter["data"] = {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "other"}}}}}
    h.client.create(rev_rt(h), NS, squatter)
    step(h, ctl)
    status = the_set(h)["status"]
    assert status["collisionCount"] == 1 and status["updateRevision"] != squatter["metadata"]["name"]
    assert pods(h)["db-0"]["metadata"]["labels"][REVISION_LABEL] == status["updateRevision"]


def test_the_api_refuses_what_kubernetes_refuses(h: Harness) -> None:
    with pytest.raises(errors.Invalid) as bad:
        h.client.create(sts_rt(h), NS, {"metadata": {"name": "x"}, "spec": {
            "selector": {"matchLabels": {"app": "x"}}, "podManagementPolicy": "Random", "minReadySeconds": -1,
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"activeDeadlineSeconds": 5, "containers": [
                {"name": "c", "image": "i", "volumeMounts": [{"name": "nope", "mountPath": "/d"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}})
    text = str(bad.value)
    assert "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'" in text
    assert ("spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:1, "
            "MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'") in text
    assert "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0" in text
    assert ('spec.template.metadata.labels: Invalid value: map[string]string{"app":"y"}: `selector` does not match '
            "template `labels`") in text
    assert ("spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not "
            "Supported") in text
    assert 'volumeMounts[0].name: Not found: "nope"' in text
    assert "spec.volumeClaimTemplates[0].spec.accessModes: Required value" in text
    with pytest.raises(errors.Invalid, match="empty selector is invalid for statefulset"):
        h.client.create(sts_rt(h), NS, {"metadata": {"name": "y"}, "spec": {
            "selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    with pytest.raises(errors.Invalid, match=r"spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy"
                                             r'\{Type:"Sometimes", .*must be \'RollingUpdate\' or \'OnDelete\''):
        make(h, updateStrategy={"type": "Sometimes"})
    with pytest.raises(errors.Invalid, match=r'spec\.template\.spec\.restartPolicy: Unsupported value: "Never"'):
        make(h, template={"metadata": {"labels": {"app": "db"}}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}})
    made = make(h)
    assert made["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert made["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert made["spec"]["revisionHistoryLimit"] == 10 and made["spec"]["podManagementPolicy"] == "OrderedReady"
    assert made["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    forbidden = ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                 "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                 "forbidden")
    same_pods = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}
    for field, value in (("serviceName", "other"), ("podManagementPolicy", "Parallel"), ("selector", same_pods),
                         ("volumeClaimTemplates", [])):
        with pytest.raises(errors.Invalid) as refused:
            change(h, **{field: value})
        assert forbidden in str(refused.value), field
    scaled = change(h, replicas=5, minReadySeconds=3, revisionHistoryLimit=2, updateStrategy={"type": "OnDelete"})
    assert scaled["spec"]["replicas"] == 5 and scaled["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_an_explicit_rolling_update_type_gets_no_partition_and_updates_all(h: Harness) -> None:
    made = h.client.create(sts_rt(h), NS, {"metadata": {"name": "db"}, "spec": {
        "selector": {"matchLabels": {"app": "db"}}, "updateStrategy": {"type": "RollingUpdate"},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg"}]}}}})
    assert made["spec"]["updateStrategy"] == {"type": "RollingUpdate"}  # as Kubernetes defaults it


def test_a_controller_revision_keeps_its_data(h: Harness) -> None:
    with pytest.raises(errors.Invalid, match="data: Required value: data is mandatory"):
        h.client.create(rev_rt(h), NS, {"metadata": {"name": "r"}, "revision": 1})
    made = h.client.create(rev_rt(h), NS, {"metadata": {"name": "r"}, "revision": 1, "data": {"a": 1}})
    with pytest.raises(errors.Invalid, match=r"data: Invalid value.*field is immutable"):
        h.client.update(rev_rt(h), {**made, "data": {"a": 2}})
    assert h.client.update(rev_rt(h), {**made, "revision": 2})["revision"] == 2


def test_ordered_start_waits_for_min_ready_seconds(h: Harness) -> None:
    make(h, replicas=2, minReadySeconds=30)
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    pod = pods(h)["db-0"]
    just_now = timefmt.rfc3339(timefmt.now())
    h.client.update_status(h.kinds.pods, {**pod, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": just_now}]}})
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]  # ready, but not for 30 s yet
    status = the_set(h)["status"]
    assert status["readyReplicas"] == 1 and status["availableReplicas"] == 0
    long_ago = timefmt.rfc3339(timefmt.now() - dt.timedelta(seconds=31))
    pod = pods(h)["db-0"]
    h.client.update_status(h.kinds.pods, {**pod, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": long_ago}]}})
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1"]
