"""Which volume a claim binds to, and where a volume may be used: the rules the volume controller and the
scheduler share."""

from __future__ import annotations

from typing import Any

from core.kube import volumebinding as vb

Obj = dict[str, Any]


def pv(name: str, size: str, klass: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",), **spec: Any) -> Obj:
    return {"metadata": {"name": name, "labels": spec.pop("labels", {})},
            "spec": {"capacity": {"storage": size}, "storageClassName": klass, "accessModes": list(modes), **spec},
            "status": {"phase": spec.pop("phase", "Available")}}


def claim(size: str = "1Gi", klass: str = "", modes: tuple[str, ...] = ("ReadWriteOnce",), **spec: Any) -> Obj:
    return {"metadata": {"name": "data", "namespace": "default", "uid": "c-1"},
            "spec": {"resources": {"requests": {"storage": size}}, "storageClassName": klass,
                     "accessModes": list(modes), **spec}}


def test_the_smallest_fitting_volume_of_the_class_wins() -> None:
    volumes = [pv("big", "10Gi"), pv("small", "1Gi"), pv("tiny", "500Mi"), pv("fast", "1Gi", "ssd"),
               pv("rox", "1Gi", modes=("ReadOnlyMany",))]
    assert vb.best_volume(volumes, claim())["metadata"]["name"] == "small"  # type: ignore[index]
    assert vb.best_volume(volumes, claim(klass="ssd"))["metadata"]["name"] == "fast"  # type: ignore[index]
    assert vb.best_volume(volumes, claim("20Gi")) is None


def test_taken_volumes_selectors_modes_and_reservations() -> None:
    taken = pv("taken", "1Gi", claimRef={"name": "other", "namespace": "default", "uid": "x"})
    labelled = pv("labelled", "5Gi", labels={"tier": "gold"})
    reserved = pv("reserved", "8Gi", claimRef={"name": "data", "namespace": "default"})
    assert not vb.fits(taken, claim())
    assert vb.best_volume([labelled, pv("plain", "1Gi")], claim(selector={"matchLabels": {"tier": "gold"}})) == labelled
    assert vb.best_volume([pv("plain", "1Gi"), reserved], claim()) == reserved  # named for it ahead of time
    assert not vb.fits(pv("rwo", "1Gi"), claim(modes=("ReadWriteOnce", "ReadWriteMany")))
    assert not vb.fits(pv("block", "1Gi", volumeMode="Block"), claim())
    assert not vb.fits(pv("released", "1Gi", phase="Released"), claim())


def test_node_affinity_and_the_indexes() -> None:
    node_a = {"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}}}
    node_b = {"metadata": {"name": "b", "labels": {"kubernetes.io/hostname": "b"}}}
    pinned = pv("pinned", "1Gi", nodeAffinity={"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]}]}]}})
    assert vb.on_node(pinned, node_a) and not vb.on_node(pinned, node_b)
    assert vb.on_node(pv("anywhere", "1Gi"), node_b)
    assert vb.local_path_node(pinned) == "a" and vb.local_path_node(pv("anywhere", "1Gi")) is None
    assert vb.unclaimed_class(pv("free", "1Gi", "ssd")) == ["ssd"]
    assert vb.unclaimed_class(pv("taken", "1Gi", claimRef={"name": "x", "namespace": "n", "uid": "u"})) == []
    assert vb.claim_ref_key(pv("taken", "1Gi", claimRef={"name": "x", "namespace": "n", "uid": "u"})) == ["n/x"]
    pod = {"spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "one"}}, {"name": "b",
                                                                                               "emptyDir": {}}]}}
    assert vb.claim_names(pod) == ["one"]
