"""The strategic-merge-patch type table: every reference resolves and the Go tags are carried over."""

from __future__ import annotations

import pytest

from core.kube import schema


def _walk(type_name: str, *path: str) -> schema.PatchMeta:
    meta = schema.PatchMeta(type=type_name)
    for field in path:
        meta = schema.lookup(meta.type, field)
    return meta


def test_every_referenced_type_exists() -> None:
    missing = {(name, field, meta.type) for name, fields in schema.TYPES.items()
               for field, meta in fields.items() if meta.type is not None and meta.type not in schema.TYPES}
    assert missing == set()


def test_every_kind_has_a_root_with_object_meta() -> None:
    for kind in schema.KINDS:
        assert schema.root_type(kind) == kind
        assert schema.lookup(kind, "metadata").type == "ObjectMeta"


@pytest.mark.parametrize(("kind", "path", "strategy", "key"), [
    ("Pod", ("metadata", "finalizers"), "merge", ""),
    ("Pod", ("metadata", "ownerReferences"), "merge", "uid"),
    ("Pod", ("spec", "containers"), "merge", "name"),
    ("Pod", ("spec", "initContainers"), "merge", "name"),
    ("Pod", ("spec", "ephemeralContainers"), "merge", "name"),
    ("Pod", ("spec", "volumes"), "merge", "name"),
    ("Pod", ("spec", "imagePullSecrets"), "merge", "name"),
    ("Pod", ("spec", "hostAliases"), "merge", "ip"),
    ("Pod", ("spec", "topologySpreadConstraints"), "merge", "topologyKey"),
    ("Pod", ("spec", "tolerations"), "", ""),
    ("Pod", ("spec", "containers", "ports"), "merge", "containerPort"),
    ("Pod", ("spec", "containers", "env"), "merge", "name"),
    ("Pod", ("spec", "containers", "volumeMounts"), "merge", "mountPath"),
    ("Pod", ("spec", "containers", "volumeDevices"), "merge", "devicePath"),
    ("Pod", ("spec", "containers", "envFrom"), "", ""),
    ("Pod", ("status", "conditions"), "merge", "type"),
    ("Pod", ("status", "podIPs"), "merge", "ip"),
    ("Service", ("spec", "ports"), "merge", "port"),
    ("Node", ("status", "addresses"), "merge", "type"),
    ("Node", ("status", "conditions"), "merge", "type"),
    ("Node", ("spec", "taints"), "", ""),
    ("Node", ("spec", "podCIDRs"), "merge", ""),
    ("Deployment", ("spec", "template", "spec", "containers", "ports"), "merge", "containerPort"),
    ("Deployment", ("status", "conditions"), "merge", "type"),
    ("ReplicaSet", ("spec", "template", "spec", "volumes"), "merge", "name"),
    ("DaemonSet", ("spec", "template", "metadata", "finalizers"), "merge", ""),
    ("Job", ("spec", "template", "spec", "initContainers", "env"), "merge", "name"),
    ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec", "containers"), "merge", "name"),
    ("PodTemplate", ("template", "spec", "containers"), "merge", "name"),
    ("Endpoints", ("subsets",), "", ""),
    ("ServiceAccount", ("secrets",), "merge", "name"),
    ("ServiceAccount", ("imagePullSecrets",), "", ""),
    ("Namespace", ("spec", "finalizers"), "", ""),
])
def test_patch_tags(kind: str, path: tuple[str, ...], strategy: str, key: str) -> None:
    meta = _walk(kind, *path)
    assert (meta.strategy, meta.merge_key) == (strategy, key)


def test_retain_keys_fields() -> None:
    assert _walk("Deployment", "spec", "strategy").retain_keys
    assert _walk("Pod", "spec", "volumes").retain_keys
    assert not _walk("DaemonSet", "spec", "updateStrategy").retain_keys


def test_unknown_kinds_and_fields_get_the_default() -> None:
    assert schema.root_type("Widget") is None
    assert schema.lookup(None, "containers") == schema.DEFAULT
    assert schema.lookup("Pod", "nonsense") == schema.DEFAULT
    assert schema.lookup("NoSuchType", "x") == schema.DEFAULT
