"""Field sets and their FieldsV1 form (`core.kube.fieldpath`), checked against structured-merge-diff's format."""

from __future__ import annotations

import json

import pytest

from core.kube import fieldpath
from core.kube.fieldpath import Path

CONTAINER: Path = ("f:spec", "f:containers", 'k:{"name":"web"}')


def test_round_trip_of_a_kubernetes_fieldsv1_document() -> None:
    # As kube-apiserver writes it for `kubectl apply --server-side` of a Deployment.
    raw = json.loads('{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},'
                     '"f:template":{"f:spec":{"f:containers":{"k:{\\"name\\":\\"web\\"}":{".":{},"f:image":{},'
                     '"f:name":{},"f:ports":{"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},'
                     '"f:containerPort":{}}}}}}}}}')
    paths = fieldpath.from_fields_v1(raw)
    assert ("f:spec", "f:replicas") in paths
    assert ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}') in paths
    assert ("f:spec", "f:template") not in paths  # a node with children and no "." is not a member
    assert fieldpath.to_fields_v1(paths) == raw
    assert json.dumps(fieldpath.to_fields_v1(paths)) == json.dumps(raw)  # the same order too


def test_order_is_fields_then_keys_then_values_then_indexes() -> None:
    paths = {("i:2",), ("v:\"x\"",), ("f:b",), ('k:{"a":1}',), ("f:a",), ("i:10",)}
    assert list(fieldpath.to_fields_v1(paths)) == ["f:a", "f:b", 'k:{"a":1}', 'v:"x"', "i:2", "i:10"]


def test_key_element_sorts_its_fields_and_keeps_unicode() -> None:
    assert fieldpath.key({"protocol": "TCP", "containerPort": 80}) == 'k:{"containerPort":80,"protocol":"TCP"}'
    assert fieldpath.value("é") == 'v:"é"'


@pytest.mark.parametrize("bad", [[], {"f:a": []}, {"x:a": {}}, {"k:notjson": {}}, {"k:[1]": {}}, {"i:a": {}}])
def test_malformed_fieldsv1_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        fieldpath.from_fields_v1(bad)


def test_paths_print_as_in_kubernetes_conflicts() -> None:
    assert fieldpath.path_string(("f:spec", "f:replicas")) == ".spec.replicas"
    assert fieldpath.path_string((*CONTAINER, "f:image")) == '.spec.containers[name="web"].image'
    ports = ("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert fieldpath.path_string(ports) == '.ports[containerPort=80,protocol="TCP"]'
    assert fieldpath.path_string(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'
    assert fieldpath.path_string(("f:args", "i:0")) == ".args[0]"
