"""The StatefulSet controller one sync at a time: ordered and parallel starts, highest-first scale-down, claims
and their retention, revisions and their history limit; and the API's rules for StatefulSets."""

from __future__ import annotations

from typing import Any

import pytest

from core import errors
from master.controllers.statefulset.controller import REVISION_LABEL, StatefulSetController
from tests.master.controllers.direct import Harness

Obj = dict[str, Any]
NS = "default"


def sts_rt(h: Harness) -> Any:
    return h.client.catalog.by_kind("apps", "StatefulSet")


def make(h: Harness, replicas: int = 3, **spec: Any) -> Obj:
    return h.client.create(sts_rt(h), NS, {"metadata": {"name": "db"}, "spec": {
        "replicas": replicas, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "pg"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}], **spec}})


def pods(h: Harness) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in h.client.list(h.kinds.pods, NS)
            if not p["metadata"].get("deletionTimestamp")}


def ready(h: Harness, *names: str) -> None:
    for name in names:
        pod = h.client.get(h.kinds.pods, NS, name)
        assert pod is not None
        pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        h.client.update_status(h.kinds.pods, pod)


def step(h: Harness, ctl: StatefulSetController) -> None:
    h.catch_up()
    ctl.sync(f"{NS}/db")
    h.catch_up()


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
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-1"}} in pod["spec"]["volumes"]
    claim = h.client.get(h.kinds.persistentvolumeclaims, NS, "data-db-1")
    assert claim is not None and claim["metadata"]["labels"] == {"app": "db"}
    assert not claim["metadata"].get("ownerReferences")  # Retain: nobody owns it
    assert ("Normal", "SuccessfulCreate", "create Claim data-db-1 Pod db-1 in StatefulSet db success") in events
    assert ("Normal", "SuccessfulCreate", "create Pod db-1 in StatefulSet db successful") in events


def test_parallel_start_and_highest_first_scale_down_with_claims_owned_by_the_pods(h: Harness) -> None:
    make(h, podManagementPolicy="Parallel",
         persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0", "db-1", "db-2"]
    claim = h.client.get(h.kinds.persistentvolumeclaims, NS, "data-db-0")
    assert claim is not None and claim["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    ready(h, "db-0", "db-1", "db-2")
    sts = h.client.get(sts_rt(h), NS, "db")
    assert sts is not None
    h.client.update(sts_rt(h), {**sts, "spec": {**sts["spec"], "replicas": 1}})
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]
    claim = h.client.get(h.kinds.persistentvolumeclaims, NS, "data-db-2")
    assert claim is not None and {o["kind"] for o in claim["metadata"]["ownerReferences"]} == {"StatefulSet", "Pod"}


def test_ordered_scale_down_removes_one_pod_at_a_time_from_the_top(h: Harness) -> None:
    make(h, podManagementPolicy="Parallel")
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0", "db-1", "db-2")
    sts = h.client.get(sts_rt(h), NS, "db")
    assert sts is not None
    h.client.update(sts_rt(h), {**sts, "spec": {**sts["spec"], "replicas": 1, "podManagementPolicy": "Parallel"}})
    step(h, ctl)
    assert sorted(pods(h)) == ["db-0"]


def test_revisions_are_kept_to_the_history_limit(h: Harness) -> None:
    make(h, replicas=1, revisionHistoryLimit=1)
    ctl = h.build(StatefulSetController)
    rev_rt = h.client.catalog.by_kind("apps", "ControllerRevision")
    for image in ("pg:1", "pg:2", "pg:3"):
        sts = h.client.get(sts_rt(h), NS, "db")
        assert sts is not None
        template = {**sts["spec"]["template"], "spec": {"containers": [{"name": "c", "image": image}]}}
        h.client.update(sts_rt(h), {**sts, "spec": {**sts["spec"], "template": template}})
        step(h, ctl)
        ready(h, *pods(h))
        step(h, ctl)
        step(h, ctl)
        ready(h, *pods(h))
        step(h, ctl)
    step(h, ctl)
    revisions = h.client.list(rev_rt, NS)
    sts = h.client.get(sts_rt(h), NS, "db")
    assert sts is not None
    assert sts["status"]["updateRevision"] == sts["status"]["currentRevision"]
    # the one in use and one more (the limit); the first template's revision is gone
    assert sorted(r["revision"] for r in revisions) == [2, 3]
    assert sts["status"]["updateRevision"] in {r["metadata"]["name"] for r in revisions}
    assert pods(h)["db-0"]["metadata"]["labels"][REVISION_LABEL] == sts["status"]["updateRevision"]
    assert pods(h)["db-0"]["spec"]["containers"][0]["image"] == "pg:3"


def test_the_api_refuses_what_kubernetes_refuses(h: Harness) -> None:
    with pytest.raises(errors.Invalid) as bad:
        h.client.create(sts_rt(h), NS, {"metadata": {"name": "x"}, "spec": {
            "selector": {"matchLabels": {"app": "x"}}, "podManagementPolicy": "Random",
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [
                {"name": "c", "image": "i", "volumeMounts": [{"name": "nope", "mountPath": "/d"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}})
    text = str(bad.value)
    assert 'spec.podManagementPolicy: Unsupported value: "Random"' in text
    assert 'volumeMounts[0].name: Not found: "nope"' in text
    assert "spec.volumeClaimTemplates[0].spec.accessModes: Required value" in text
    made = make(h)
    assert made["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert made["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    with pytest.raises(errors.Invalid, match="updates to statefulset spec for fields other than"):
        h.client.update(sts_rt(h), {**made, "spec": {**made["spec"], "serviceName": "other"}})
    scaled = h.client.update(sts_rt(h), {**made, "spec": {**made["spec"], "replicas": 5}})
    assert scaled["spec"]["replicas"] == 5


def test_on_delete_changes_a_pod_only_when_it_is_deleted(h: Harness) -> None:
    make(h, replicas=2, podManagementPolicy="Parallel", updateStrategy={"type": "OnDelete"})
    ctl = h.build(StatefulSetController)
    step(h, ctl)
    ready(h, "db-0", "db-1")
    step(h, ctl)
    sts = h.client.get(sts_rt(h), NS, "db")
    assert sts is not None
    first = sts["status"]["updateRevision"]
    template = {**sts["spec"]["template"], "spec": {"containers": [{"name": "c", "image": "pg:2"}]}}
    h.client.update(sts_rt(h), {**sts, "spec": {**sts["spec"], "template": template}})
    step(h, ctl)
    step(h, ctl)
    assert {p["spec"]["containers"][0]["image"] for p in pods(h).values()} == {"pg"}  # nothing replaced
    h.client.delete(h.kinds.pods, NS, "db-1", grace=0)
    step(h, ctl)
    step(h, ctl)  # the status of what the first sync made
    now = pods(h)
    assert now["db-1"]["spec"]["containers"][0]["image"] == "pg:2" and now["db-0"]["spec"]["containers"][0][
        "image"] == "pg"
    sts = h.client.get(sts_rt(h), NS, "db")
    assert sts is not None and sts["status"]["currentRevision"] == first
    assert sts["status"]["updatedReplicas"] == 1 and sts["status"]["currentReplicas"] == 1
