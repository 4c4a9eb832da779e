"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902): the RFCs' examples plus Kubernetes' status codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import errors
from core.kube.patch import json_merge_patch, json_patch

# --- RFC 7386 ---------------------------------------------------------------------------------------

# RFC 7386 Appendix A, in order.
MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), MERGE_CASES)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    before = json.dumps(target)
    assert json_merge_patch(target, patch) == expected
    assert json.dumps(target) == before


def test_merge_patch_lists_inside_are_replaced_whole_nulls_kept() -> None:
    # Lists are values: a null inside one is data, not a deletion.
    assert json_merge_patch({"a": [1, 2]}, {"a": [None]}) == {"a": [None]}


def test_merge_patch_keeps_key_order_and_does_not_alias() -> None:
    target: dict[str, Any] = {"z": {"x": [1]}, "a": 1}
    result = json_merge_patch(target, {"b": 2})
    assert list(result) == ["z", "a", "b"]
    result["z"]["x"].append(2)
    assert target["z"]["x"] == [1]


# --- RFC 6902 ---------------------------------------------------------------------------------------

# RFC 6902 Appendix A examples that succeed.
JSON_PATCH_CASES = [
    ("A.1 add object member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2 add array element", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3 remove object member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
     {"foo": "bar"}),
    ("A.4 remove array element", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5 replace", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6 move value", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7 move array element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}], {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8 test success", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10 add nested member", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11 unrecognized members ignored", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ("A.14 escape ordering", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16 add array value", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ("append with -", {"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}], {"a": [1, 2]}),
    ("add at end index", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2]}),
    ("add replaces existing member", {"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}),
    ("add at root", {"a": 1}, [{"op": "add", "path": "", "value": [1]}], [1]),
    ("replace root", {"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ("slash in key", {"metadata": {"annotations": {}}},
     [{"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "me"}],
     {"metadata": {"annotations": {"example.com/owner": "me"}}}),
    ("copy is deep", {"a": {"b": [1]}},
     [{"op": "copy", "from": "/a", "path": "/c"}, {"op": "add", "path": "/c/b/-", "value": 2}],
     {"a": {"b": [1]}, "c": {"b": [1, 2]}}),
    ("move onto itself", {"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    ("test null", {"a": None}, [{"op": "test", "path": "/a", "value": None}], {"a": None}),
    ("test int equals float", {"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}], {"a": 1}),
    ("test whole doc", {"a": [1, {"b": 2}]}, [{"op": "test", "path": "", "value": {"a": [1, {"b": 2}]}}],
     {"a": [1, {"b": 2}]}),
    ("value is copied in", {}, [{"op": "add", "path": "/a", "value": {"x": 1}}], {"a": {"x": 1}}),
    ("kubectl scale-style replace", {"spec": {"replicas": 1}},
     [{"op": "replace", "path": "/spec/replicas", "value": 3}], {"spec": {"replicas": 3}}),
]


@pytest.mark.parametrize(("target", "ops", "expected"), [c[1:] for c in JSON_PATCH_CASES],
                         ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch_applies(target: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    before = json.dumps(target)
    assert json_patch(target, ops) == expected
    assert json.dumps(target) == before


def test_json_patch_added_value_is_not_shared_with_the_patch() -> None:
    value = {"x": [1]}
    result = json_patch({}, [{"op": "add", "path": "/a", "value": value}])
    result["a"]["x"].append(2)
    assert value == {"x": [1]}


# Failures while applying: 422 with the Go json-patch wording Kubernetes returns.
APPLY_FAILURES = [
    ("A.9 test error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}],
     "testing value /baz failed: test failed"),
    ("A.12 add to nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}],
     'jsonpatch add operation does not apply: doc is missing path: /baz/bat'),
    ("A.15 string is not number", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}],
     "testing value /~01 failed: test failed"),
    ("replace missing key", {"spec": {}}, [{"op": "replace", "path": "/spec/tolerations", "value": []}],
     "jsonpatch replace operation does not apply: doc is missing key: /spec/tolerations"),
    ("remove missing member", {"metadata": {"labels": {}}},
     [{"op": "remove", "path": "/metadata/labels/nope"}],
     "jsonpatch remove operation does not apply: doc is missing path: /metadata/labels/nope"),
    ("remove past the end", {"a": [1]}, [{"op": "remove", "path": "/a/1"}], "array index 1 out of bounds"),
    ("add past the end", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 0}],
     "array index 2 out of bounds"),
    ("leading zero index", {"a": [1, 2]}, [{"op": "replace", "path": "/a/01", "value": 0}],
     "invalid array index '01'"),
    ("dash only for add", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], "invalid array index '-'"),
    ("negative index", {"a": [1]}, [{"op": "remove", "path": "/a/-1"}], "invalid array index '-1'"),
    ("into a scalar", {"a": 1}, [{"op": "add", "path": "/a/b", "value": 0}], "doc is missing path: /a/b"),
    ("remove root", {"a": 1}, [{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ("move from missing", {"a": 1}, [{"op": "move", "from": "/b", "path": "/c"}],
     "jsonpatch move operation does not apply: doc is missing from path: /b"),
    ("copy from missing", {"a": 1}, [{"op": "copy", "from": "/b", "path": "/c"}],
     "jsonpatch copy operation does not apply: doc is missing from path: /b"),
    ("move into own child", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}],
     "cannot move /a into its own child /a/b/c"),
    ("test bool is not number", {"a": True}, [{"op": "test", "path": "/a", "value": 1}],
     "testing value /a failed: test failed"),
    ("test missing path", {"a": 1}, [{"op": "test", "path": "/b", "value": 1}],
     "testing value /b failed: test failed"),
    ("unknown op", {"a": 1}, [{"op": "frob", "path": "/a"}], "Unexpected kind: frob"),
    ("missing op", {"a": 1}, [{"path": "/a"}], "Unexpected kind: None"),
    ("missing path", {"a": 1}, [{"op": "remove"}], "remove operation missing 'path'"),
    ("missing value", {"a": 1}, [{"op": "add", "path": "/b"}], "add operation missing 'value'"),
    ("missing from", {"a": 1}, [{"op": "copy", "path": "/b"}], "copy operation missing 'from'"),
    ("pointer without slash", {"a": 1}, [{"op": "remove", "path": "a"}], "must be empty or start with '/'"),
    ("bad escape", {"a": 1}, [{"op": "remove", "path": "/~2"}], "invalid escape"),
    ("path not a string", {"a": 1}, [{"op": "remove", "path": 5}], "'path' must be a string"),
]


@pytest.mark.parametrize(("target", "ops", "message"), [c[1:] for c in APPLY_FAILURES],
                         ids=[c[0] for c in APPLY_FAILURES])
def test_json_patch_failures_are_422(target: Any, ops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(errors.Invalid) as caught:
        json_patch(target, ops)
    assert message in caught.value.message
    assert caught.value.code == 422


def test_failed_patch_changes_nothing() -> None:
    target = {"a": [1, 2], "b": {"c": 1}}
    with pytest.raises(errors.Invalid):
        json_patch(target, [{"op": "remove", "path": "/a/0"}, {"op": "add", "path": "/b/c", "value": 2},
                            {"op": "test", "path": "/a/0", "value": 99}])
    assert target == {"a": [1, 2], "b": {"c": 1}}


@pytest.mark.parametrize("body", [{"op": "add"}, "x", None, [1], [[{"op": "add"}]]])
def test_json_patch_body_that_is_not_a_list_of_objects_is_400(body: Any) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        json_patch({}, body)
    assert caught.value.code == 400


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "", "value": {}}] * 10_001
    with pytest.raises(errors.RequestEntityTooLarge) as caught:
        json_patch({}, ops)
    assert caught.value.message == "The allowed maximum operations in a JSON patch is 10000, got 10001"
    assert json_patch({}, ops[:10_000]) == {}


# --- properties -------------------------------------------------------------------------------------

KEYS = st.text(alphabet="ab/~", min_size=1, max_size=3)
SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=4)


def _pointer(*tokens: str) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


@settings(max_examples=200, deadline=None)
@given(OBJECTS, JSON)
def test_merge_patch_is_idempotent(target: dict[str, Any], patch: Any) -> None:
    once = json_merge_patch(target, patch)
    assert json_merge_patch(once, patch) == once


@settings(max_examples=200, deadline=None)
@given(OBJECTS)
def test_merge_patch_with_an_empty_object_changes_nothing(target: dict[str, Any]) -> None:
    assert json_merge_patch(target, {}) == target


@settings(max_examples=200, deadline=None)
@given(OBJECTS, KEYS, JSON)
def test_json_patch_add_then_remove_is_identity(target: dict[str, Any], key: str, value: Any) -> None:
    if key in target:
        return
    ops = [{"op": "add", "path": _pointer(key), "value": value}, {"op": "remove", "path": _pointer(key)}]
    assert json_patch(target, ops) == target


@settings(max_examples=200, deadline=None)
@given(OBJECTS)
def test_json_patch_test_passes_on_every_member(target: dict[str, Any]) -> None:
    ops = [{"op": "test", "path": _pointer(k), "value": v} for k, v in target.items()]
    assert json_patch(target, [*ops, {"op": "test", "path": "", "value": target}]) == target


@settings(max_examples=200, deadline=None)
@given(OBJECTS, KEYS, JSON)
def test_json_patch_add_agrees_with_merge_patch_for_non_null_members(target: dict[str, Any], key: str,
                                                                      value: Any) -> None:
    if value is None or isinstance(value, dict):
        return  # merge patch deletes on null and merges objects: the two formats differ there by design
    assert json_patch(target, [{"op": "add", "path": _pointer(key), "value": value}]) == \
        json_merge_patch(target, {key: value})
