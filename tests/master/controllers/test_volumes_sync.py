"""Persistent volumes, one sync at a time: admission and validation of the storage kinds, the volume controller
(static binding, phases, protection, reclaim) and the scheduler's view of a pod's claims (placement and binding
on the chosen board)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from core import errors, wellknown
from master.controllers.volumes.binder import PersistentVolumeController
from master.scheduler.cache import Cache, Usage
from master.scheduler.fit import Fitter
from master.scheduler.volumes import AFFINITY_CONFLICT, NO_VOLUMES, UNBOUND_IMMEDIATE, VolumeBinder
from tests.master.controllers.direct import Harness

Obj = dict[str, Any]
NS = "default"




def local_class(h: Harness, name: str = "local-path", mode: str = "WaitForFirstConsumer", default: bool = True,
                provisioner: str = wellknown.LOCAL_PATH_PROVISIONER) -> Obj:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return h.client.create(h.kinds.storageclasses, "", {"metadata": {"name": name, "annotations": annotations},
                                                         "provisioner": provisioner, "volumeBindingMode": mode})


def claim(h: Harness, name: str = "data", size: str = "1Gi", **spec: Any) -> Obj:
    return h.client.create(h.kinds.persistentvolumeclaims, NS, {"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}})


def volume(h: Harness, name: str, size: str = "1Gi", node: str = "", klass: str = "", policy: str = "Retain",
           **spec: Any) -> Obj:
    body: Obj = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                 "storageClassName": klass, "persistentVolumeReclaimPolicy": policy,
                 "hostPath": {"path": f"/srv/{name}"}, **spec}
    if node:
        body["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return h.client.create(h.kinds.persistentvolumes, "", {"metadata": {"name": name}, "spec": body})


def get(h: Harness, rt: Any, name: str, ns: str = "") -> Obj:
    found = h.client.get(rt, ns, name)
    assert found is not None
    return found


# --- the API's rules -------------------------------------------------------------------------------------------
def test_a_claim_without_a_class_gets_the_default_one_and_protection(h: Harness) -> None:
    assert claim(h, "before")["spec"].get("storageClassName") is None  # no default class yet
    local_class(h)
    made = claim(h)
    assert made["spec"]["storageClassName"] == "local-path"
    assert made["spec"]["volumeMode"] == "Filesystem"
    assert made["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert made["status"] == {"phase": "Pending"}
    assert claim(h, "none", storageClassName="")["spec"]["storageClassName"] == ""  # "" asks for no class


def test_claim_volume_and_class_validation_in_kubernetes_words(h: Harness) -> None:
    with pytest.raises(errors.Invalid) as bad:
        h.client.create(h.kinds.persistentvolumeclaims, NS, {"metadata": {"name": "x"}, "spec": {
            "accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "0"}}}})
    text = str(bad.value)
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in text
    assert 'spec.resources.requests[storage]: Invalid value: "0": must be greater than zero' in text
    with pytest.raises(errors.Invalid) as bad:
        h.client.create(h.kinds.persistentvolumes, "", {"metadata": {"name": "v"}, "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "local": {"path": "/mnt"}}})
    assert "spec.nodeAffinity: Required value: Local volume requires node affinity" in str(bad.value)
    with pytest.raises(errors.Invalid) as bad:
        h.client.create(h.kinds.persistentvolumes, "", {"metadata": {"name": "v"}, "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}})
    assert "spec: Required value: must specify a volume type" in str(bad.value)
    sc = local_class(h)
    with pytest.raises(errors.Invalid) as bad:
        h.client.update(h.kinds.storageclasses, {**sc, "provisioner": "example.com/other"})
    assert "provisioner: Forbidden: updates to provisioner are forbidden." in str(bad.value)
    made = claim(h)
    with pytest.raises(errors.Invalid) as bad:
        h.client.update(h.kinds.persistentvolumeclaims, {**made, "spec": {**made["spec"], "accessModes": [
            "ReadWriteMany"]}})
    assert "spec: Forbidden: spec is immutable after creation" in str(bad.value)
    grown = {**made, "spec": {**made["spec"], "resources": {"requests": {"storage": "2Gi"}}}}
    assert h.client.update(h.kinds.persistentvolumeclaims, grown)["spec"]["resources"]["requests"]["storage"] == "2Gi"


# --- the volume controller -----------------------------------------------------------------------------------
def test_a_claim_of_no_class_binds_to_the_smallest_volume_that_fits(h: Harness) -> None:
    volume(h, "big", "10Gi")
    volume(h, "small", "2Gi")
    volume(h, "tiny", "512Mi")
    volume(h, "classy", "2Gi", klass="fast")
    claim(h, storageClassName="")
    ctl = h.build(PersistentVolumeController)
    h.settle(ctl)
    got = get(h, h.kinds.persistentvolumeclaims, "data", NS)
    assert got["spec"]["volumeName"] == "small"
    assert got["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                             "capacity": {"storage": "2Gi"}}
    small = get(h, h.kinds.persistentvolumes, "small")
    assert small["spec"]["claimRef"]["uid"] == got["metadata"]["uid"] and small["status"]["phase"] == "Bound"
    assert {get(h, h.kinds.persistentvolumes, n)["status"]["phase"] for n in ("big", "tiny", "classy")} == \
        {"Available"}


def test_a_claim_of_a_missing_class_waits_with_kubernetes_event(h: Harness, events: list[Any]) -> None:
    claim(h, storageClassName="nope")
    volume(h, "any", "5Gi")
    ctl = h.build(PersistentVolumeController)
    h.settle(ctl)
    assert get(h, h.kinds.persistentvolumeclaims, "data", NS)["status"]["phase"] == "Pending"
    assert ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "nope" not found') in events
    assert sum(1 for e in events if e[1] == "ProvisioningFailed") == 1  # said once, not at every resync
    local_class(h, "nope", mode="Immediate", default=False, provisioner="example.com/nfs")
    h.settle(ctl)
    assert any(e[1] == "ExternalProvisioning" for e in events)


def test_a_released_volume_is_kept_retained_or_failed_by_policy(h: Harness, events: list[Any]) -> None:
    volume(h, "kept", "1Gi", policy="Retain")
    claim(h, storageClassName="")
    ctl = h.build(PersistentVolumeController)
    h.settle(ctl)
    h.client.delete(h.kinds.persistentvolumeclaims, NS, "data")
    h.settle(ctl)
    assert h.client.get(h.kinds.persistentvolumeclaims, NS, "data") is None  # no pod used it: protection let go
    assert get(h, h.kinds.persistentvolumes, "kept")["status"]["phase"] == "Released"
    volume(h, "nfs-ish", "1Gi", policy="Delete")
    claim(h, "other", storageClassName="")
    h.settle(ctl)
    assert get(h, h.kinds.persistentvolumes, "nfs-ish")["spec"]["claimRef"]["name"] == "other"
    h.client.delete(h.kinds.persistentvolumeclaims, NS, "other")
    h.settle(ctl)
    failed = get(h, h.kinds.persistentvolumes, "nfs-ish")
    assert failed["status"]["phase"] == "Failed"
    assert failed["status"]["message"] == ('error getting deleter volume plugin for volume "nfs-ish": no deletable '
                                           "volume plugin matched")


def test_a_claim_in_use_keeps_its_protection_until_the_pod_goes(h: Harness) -> None:
    volume(h, "v", "1Gi")
    claim(h, storageClassName="")
    pod = h.client.create(h.kinds.pods, NS, {"metadata": {"name": "user"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    ctl = h.build(PersistentVolumeController)
    h.settle(ctl)
    h.client.delete(h.kinds.persistentvolumeclaims, NS, "data")
    h.settle(ctl)
    held = get(h, h.kinds.persistentvolumeclaims, "data", NS)
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert get(h, h.kinds.persistentvolumes, "v")["status"]["phase"] == "Bound"
    h.client.delete(h.kinds.persistentvolumes, "", "v")
    h.settle(ctl)
    marked = get(h, h.kinds.persistentvolumes, "v")  # held by pv-protection while its claim is there
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["finalizers"] == [
        "kubernetes.io/pv-protection"]
    h.client.delete(h.kinds.pods, NS, pod["metadata"]["name"], grace=0)
    h.settle(ctl)
    assert h.client.get(h.kinds.persistentvolumeclaims, NS, "data") is None
    assert h.client.get(h.kinds.persistentvolumes, "", "v") is None  # released, then let go


# --- the scheduler ---------------------------------------------------------------------------------------------
def board(name: str, local_dir: str | None = "/var/lib/pikube/storage") -> Obj:
    annotations = {wellknown.LOCAL_PATH_DIR_ANNOTATION: local_dir} if local_dir else {}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/arch": "arm64"},
                         "annotations": annotations},
            "spec": {}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"},
                                   "conditions": [{"type": "Ready", "status": "True"}]}}


def user(*claims: str) -> Obj:
    return {"metadata": {"name": "user", "namespace": NS, "uid": "u-1"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}],
                     "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}


def place(binder: VolumeBinder, *nodes: Obj, pod: Obj) -> tuple[str | None, str]:
    cache = Cache()
    for n in nodes:
        cache.update_node(n)
    check = binder.check(pod)
    if check.error is not None:
        return None, check.error
    placement = Fitter(cache, random.Random(1)).place(pod, Usage.of(pod), None if check.empty else check.reason)
    return placement.node, placement.message()


def test_claims_decide_where_a_pod_may_go(h: Harness) -> None:
    local_class(h)
    binder = VolumeBinder(h.env, lambda: None)
    h.catch_up()
    assert place(binder, board("a"), pod=user("missing")) == (None, 'persistentvolumeclaim "missing" not found')
    claim(h, "plain", storageClassName="")
    h.catch_up()
    assert place(binder, board("a"), pod=user("plain")) == (None, UNBOUND_IMMEDIATE)
    pinned = volume(h, "on-b", node="b")
    claim(h, "bound", storageClassName="", volumeName="on-b")
    h.catch_up()
    assert pinned["spec"]["nodeAffinity"]
    assert place(binder, board("a"), board("b"), pod=user("bound"))[0] == "b"
    node, message = place(binder, board("a"), pod=user("bound"))
    assert node is None and message == f"0/1 nodes are available: 1 {AFFINITY_CONFLICT}."
    claim(h, "late")  # the default local-path class: any board that published its directory
    h.catch_up()
    node, message = place(binder, board("a", None), board("c"), pod=user("late"))
    assert node == "c"
    assert place(binder, board("a", None), pod=user("late"))[1] == f"0/1 nodes are available: 1 {NO_VOLUMES}."


def test_binding_on_the_chosen_board_makes_a_local_path_volume_there(h: Harness) -> None:
    local_class(h)
    made = claim(h, "late", size="3Gi")
    binder = VolumeBinder(h.env, lambda: None)
    h.catch_up()
    pod = user("late")
    check = binder.check(pod)
    binder.assume(pod, check, "c")
    other = {**user("late"), "metadata": {"name": "twin", "namespace": NS, "uid": "u-2"}}
    assert place(binder, board("a"), board("c"), pod=other)[0] == "c"  # the claim is promised to c already
    binder.bind_claims(pod, check, "c", board("c"))
    got = get(h, h.kinds.persistentvolumeclaims, "late", NS)
    pv = get(h, h.kinds.persistentvolumes, got["spec"]["volumeName"])
    uid = made["metadata"]["uid"]
    assert pv["metadata"]["name"] == f"pvc-{uid}"
    assert pv["spec"]["hostPath"] == {"path": f"/var/lib/pikube/storage/pvc-{uid}_{NS}_late",
                                      "type": "DirectoryOrCreate"}
    assert pv["spec"]["capacity"] == {"storage": "3Gi"} and pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["claimRef"]["uid"] == uid
    assert pv["metadata"]["annotations"][wellknown.PROVISIONED_BY_ANNOTATION] == wellknown.LOCAL_PATH_PROVISIONER
    assert got["metadata"]["annotations"][wellknown.SELECTED_NODE_ANNOTATION] == "c"
    ctl = h.build(PersistentVolumeController)
    h.settle(ctl)
    assert get(h, h.kinds.persistentvolumeclaims, "late", NS)["status"]["phase"] == "Bound"
    assert get(h, h.kinds.persistentvolumes, pv["metadata"]["name"])["status"]["phase"] == "Bound"
    # A second pod of the claim is bound where the volume is; it may not use another board.
    h.catch_up()
    assert place(binder, board("a"), board("c"), pod=other)[0] == "c"
    with pytest.raises(errors.Conflict):
        stale = binder.check(user("late"))
        stale.delayed = [(made, get(h, h.kinds.storageclasses, "local-path"))]
        binder.bind_claims(pod, stale, "a", board("a"))
