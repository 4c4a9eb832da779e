"""The typed operations of server-side apply (`core.kube.apply`): field sets, compare, merge, removal."""

from __future__ import annotations

from typing import Any

import pytest

from core import errors
from core.kube import apply

POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"app": "a"}, "finalizers": ["x"]},
    "spec": {
        "containers": [{"name": "c", "image": "i:1", "args": ["a", "b"],
                        "ports": [{"containerPort": 80}], "env": [{"name": "E", "value": "1"}],
                        "resources": {}}],
        "tolerations": [{"key": "k"}],
    },
}
C = ("f:spec", "f:containers", 'k:{"name":"c"}')


def test_field_set_follows_the_schema_table() -> None:
    paths = apply.field_set(POD, "Pod")
    assert ("f:metadata", "f:labels", "f:app") in paths
    assert ("f:metadata", "f:finalizers", 'v:"x"') in paths  # a set list: per value
    assert C in paths and (*C, "f:image") in paths  # a keyed list: the element and its fields
    assert (*C, "f:args") in paths and not any(p[:len(C) + 2] == (*C, "f:args", "i:0") for p in paths)  # atomic
    assert (*C, "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}') in paths  # key with its default
    assert (*C, "f:resources") in paths  # an empty map is a member
    assert ("f:spec", "f:tolerations") in paths  # no merge strategy: atomic
    assert ("f:spec",) not in paths and ("f:metadata", "f:labels") not in paths


def test_atomic_selector_and_unknown_kinds() -> None:
    dep = {"spec": {"selector": {"matchLabels": {"a": "b"}}}}
    assert apply.field_set(dep, "Deployment") == {("f:spec", "f:selector")}
    custom = {"spec": {"items": [{"name": "x"}], "m": {"a": 1}}}
    assert apply.field_set(custom, "Widget") == {("f:spec", "f:items"), ("f:spec", "f:m", "f:a")}


def test_applied_elements_need_their_keys() -> None:
    with pytest.raises(errors.BadRequest):
        apply.field_set({"spec": {"containers": [{"image": "x"}]}}, "Pod", strict=True)
    assert ("f:spec", "f:containers", "i:0") in apply.field_set({"spec": {"containers": [{"image": "x"}]}}, "Pod")


def test_merge_by_key_keeps_live_only_elements_and_replaces_atomic_lists() -> None:
    config = {"spec": {"containers": [{"name": "d", "image": "j"}, {"name": "c", "args": ["z"]}],
                       "tolerations": [{"key": "other"}]}}
    merged = apply.merge(POD, config, "Pod")
    assert [c["name"] for c in merged["spec"]["containers"]] == ["d", "c"]
    c = merged["spec"]["containers"][1]
    assert c["args"] == ["z"] and c["image"] == "i:1" and c["env"] == [{"name": "E", "value": "1"}]
    assert merged["spec"]["tolerations"] == [{"key": "other"}]
    assert POD["spec"]["containers"][0]["args"] == ["a", "b"]  # inputs untouched
    live_first = apply.merge({"l": [1]}, {"l": [2]}, "Widget")
    assert live_first == {"l": [2]}


def test_merge_set_and_null() -> None:
    merged = apply.merge(POD, {"metadata": {"finalizers": ["y", "x"], "labels": None}}, "Pod")
    assert merged["metadata"]["finalizers"] == ["y", "x"]
    assert "labels" not in merged["metadata"]


def test_compare_reports_only_what_differs() -> None:
    new = apply.merge(POD, {"metadata": {"labels": {"app": "b", "new": "1"}},
                            "spec": {"containers": [{"name": "c", "env": [{"name": "F", "value": "2"}]}]}}, "Pod")
    new["spec"]["containers"][0]["env"] = [{"name": "F", "value": "2"}]
    diff = apply.compare(POD, new, "Pod")
    assert diff.modified == {("f:metadata", "f:labels", "f:app")}
    assert diff.added == {("f:metadata", "f:labels", "f:new"), (*C, "f:env", 'k:{"name":"F"}'),
                          (*C, "f:env", 'k:{"name":"F"}', "f:name"), (*C, "f:env", 'k:{"name":"F"}', "f:value")}
    assert diff.removed == {(*C, "f:env", 'k:{"name":"E"}'), (*C, "f:env", 'k:{"name":"E"}', "f:name"),
                            (*C, "f:env", 'k:{"name":"E"}', "f:value")}
    assert apply.compare(POD, POD, "Pod").empty()
    assert apply.compare({"a": True}, {"a": 1}, "Widget").modified == {("f:a",)}  # JSON, not Python, equality


def test_remove_drops_nodes_and_emptied_parents() -> None:
    env = (*C, "f:env", 'k:{"name":"E"}')
    out = apply.remove(POD, [env, (*env, "f:name"), ("f:metadata", "f:labels", "f:app")], "Pod")
    container = out["spec"]["containers"][0]
    assert "env" not in container and "labels" not in out["metadata"]
    assert POD["metadata"]["labels"] == {"app": "a"}
    assert apply.remove(POD, [("f:nope", "f:x")], "Pod") == POD


@pytest.mark.parametrize(("live", "config", "expect"), [
    (["a", "b", "c"], ["c", "a"], ["b", "c", "a"]),  # worked through structured-merge-diff's merge.go by hand
    (["a", "b"], ["a", "c"], ["a", "b", "c"]),
    (["x"], ["a", "b"], ["x", "a", "b"]),
    ([], ["a"], ["a"]),
])
def test_keyed_list_order_follows_structured_merge_diff(live: list[str], config: list[str],
                                                        expect: list[str]) -> None:
    def pod(names: list[str]) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": n} for n in names]}}
    merged = apply.merge(pod(live), pod(config), "Pod")
    assert [c["name"] for c in merged["spec"]["containers"]] == expect
