"""Structural schemas, pruning, defaulting and validation of custom resources (no master needed)."""

from __future__ import annotations

from typing import Any

import pytest

from master.registry import crdschema
from master.registry.crds import CustomResourceDefinitionStrategy
from master.registry.customresources import accepted_names, evaluate, json_path, printer_table, types_of

Obj = dict[str, Any]

SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "string", "enum": ["s", "m"], "default": "s"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 3, "default": 1},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1},
                "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
                "when": {"type": "string", "format": "date-time"},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set",
                         "maxItems": 3},
                "workers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                            "items": {"type": "object", "properties": {"id": {"type": "integer"},
                                                                       "zone": {"type": "string",
                                                                                "default": "a"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "properties": {"known": {"type": "integer"}}},
                "maybe": {"type": "string", "nullable": True},
            },
        },
    },
}


def test_a_structural_schema_passes() -> None:
    assert crdschema.structural_errors(SCHEMA, "s") == []


@pytest.mark.parametrize(("schema", "field", "message"), [
    ({"type": "object", "properties": {"a": {"description": "untyped"}}}, "s.properties[a].type",
     "Required value: must not be empty for specified object fields"),
    ({"type": "string"}, "s.type", 'Unsupported value: "string": supported values: "object"'),
    ({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-int-or-string": True}}},
     "s.properties[a].type", "must be empty if x-kubernetes-int-or-string is true"),
    ({"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "integer"}]}}},
     "s.properties[a].anyOf[0].type", "Forbidden: must be empty to be structural"),
    ({"type": "object", "properties": {"a": {"$ref": "#/x"}}}, "s.properties[a].$ref", "Forbidden"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object"},
                                             "x-kubernetes-list-type": "map"}}},
     "s.properties[a].x-kubernetes-list-map-keys", "Required value"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(["}}}, "s.properties[a].pattern",
     "must be a valid regular expression"),
    ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "labels": {"type": "object"}}}}}, "s.properties[metadata].properties[labels]",
     "only name and generateName may be restricted"),
    ({"type": "object", "x-kubernetes-validations": [{"rule": "true"}]}, "s.x-kubernetes-validations",
     "CEL validation rules are not supported by pikube"),
])
def test_non_structural_schemas_are_explained(schema: Obj, field: str, message: str) -> None:
    causes = crdschema.structural_errors(schema, "s")
    assert any(c.field == field and message in c.message for c in causes), causes


def test_pruning_keeps_what_the_schema_names_or_preserves() -> None:
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"}, "top": 1,
           "spec": {"size": "s", "bogus": {"deep": 1}, "free": {"known": 1, "anything": [1]},
                    "labels": {"any-key": "v"}, "workers": [{"id": 1, "extra": True}]}}
    pruned = crdschema.prune(obj, SCHEMA)
    assert pruned == ["top", "spec.bogus", "spec.workers[0].extra"]
    assert obj["spec"] == {"size": "s", "free": {"known": 1, "anything": [1]}, "labels": {"any-key": "v"},
                           "workers": [{"id": 1}]}
    assert obj["metadata"] == {"name": "a"} and obj["kind"] == "X"


def test_defaults_fill_absent_fields_depth_first() -> None:
    obj: Obj = {"spec": {"workers": [{"id": 1}, {"id": 2, "zone": "b"}]}}
    crdschema.apply_defaults(obj, SCHEMA)
    assert obj["spec"]["size"] == "s" and obj["spec"]["replicas"] == 1
    assert obj["spec"]["workers"] == [{"id": 1, "zone": "a"}, {"id": 2, "zone": "b"}]
    empty: Obj = {}
    crdschema.apply_defaults(empty, SCHEMA)
    assert empty == {}  # no spec: nothing below it to default


def _messages(spec: Obj) -> dict[str, str]:
    """Field → its messages, one per line."""
    out: dict[str, str] = {}
    for c in crdschema.validate({"spec": spec}, SCHEMA):
        out[c.field] = (out[c.field] + "\n" if c.field in out else "") + c.message
    return out


def test_values_are_validated_with_kubernetes_messages() -> None:
    assert _messages({"size": "s", "replicas": 2, "ratio": 0.5, "name": "ab", "when": "2024-01-02T03:04:05Z",
                      "port": 80, "tags": ["a", "b"], "workers": [{"id": 1}, {"id": 2}], "maybe": None,
                      "labels": {"a": "b"}}) == {}
    got = _messages({"size": "l", "replicas": "2", "ratio": 1, "name": "ABCDE", "when": "yesterday",
                     "port": 1.5, "tags": ["a", "a", "b", "c"], "workers": [{"id": 1}, {"id": 1}],
                     "labels": {"a": 1}})
    assert got["spec.size"] == 'Unsupported value: "l": supported values: "s", "m"'
    assert got["spec.replicas"] == 'Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    assert got["spec.ratio"] == "Invalid value: 1: spec.ratio in body should be less than 1"
    assert got["spec.name"].splitlines() == ["Too long: may not be more than 4 bytes",
                                             "Invalid value: \"ABCDE\": spec.name in body should match '^[a-z]+$'"]
    assert got["spec.when"].startswith('Invalid value: "yesterday": spec.when in body must be of type date-time')
    assert "must be of type integer,string" in got["spec.port"]
    assert got["spec.tags"] == "Too many: 4: must have at most 3 items"
    assert got["spec.tags[1]"] == 'Duplicate value: "a"'
    assert got["spec.workers[1]"].startswith("Duplicate value:")
    assert got["spec.labels.a"].startswith('Invalid value: "integer"')
    assert _messages({"replicas": 0})["spec.size"] == "Required value"
    assert _messages({"size": "s", "replicas": 0})["spec.replicas"] == \
        "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    assert _messages({"size": "s", "name": "a1"})["spec.name"] == \
        "Invalid value: \"a1\": spec.name in body should match '^[a-z]+$'"


def test_printer_columns_evaluate_simple_json_paths() -> None:
    obj = {"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]},
           "spec": {"list": [1, 2], "weird.key": "w"}}
    steps = json_path('.status.conditions[?(@.type=="Ready")].status')
    assert steps is not None and evaluate(steps, obj) == ["True"]
    steps = json_path(".spec.list[*]")
    assert steps is not None and evaluate(steps, obj) == [1, 2]
    steps = json_path(".spec['weird.key']")
    assert steps is not None and evaluate(steps, obj) == ["w"]
    assert json_path(".spec.list[?(@.x > 1)]") is None  # more than simple paths: an empty cell
    import datetime as dt
    table = printer_table([{"name": "Items", "type": "string", "jsonPath": ".spec.list[*]"},
                           {"name": "First", "type": "integer", "jsonPath": ".spec.list[0]"}])
    now = dt.datetime.now(dt.UTC)
    assert [c.name for c in table.columns] == ["Name", "Items", "First"]
    assert [c.cell(obj, now) for c in table.columns[1:]] == ["1,2", 1]


def _crd(name: str, plural: str, kind: str, created: str, **names: Any) -> Obj:
    group = name.split(".", 1)[1]
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": kind, **names},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object"}}}]}}


def test_the_oldest_crd_keeps_a_contested_name() -> None:
    old = _crd("things.a.io", "things", "Thing", "2024-01-01T00:00:00Z", shortNames=["th"])
    new = _crd("items.a.io", "items", "Item", "2024-01-02T00:00:00Z", shortNames=["th"])
    other_group = _crd("things.b.io", "things", "Thing", "2024-01-03T00:00:00Z")
    verdicts = accepted_names([new, other_group, old])
    assert verdicts == {"things.a.io": "", "items.a.io": 'ShortNamesConflict: "th" is already in use',
                        "things.b.io": ""}


def test_served_types_follow_versions_and_subresources() -> None:
    crd = _crd("things.a.io", "things", "Thing", "2024-01-01T00:00:00Z")
    crd["spec"]["versions"] = [
        {"name": "v1alpha1", "served": True, "storage": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
        {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
         "schema": {"openAPIV3Schema": {"type": "object", "description": "dropped in memory"}}},
        {"name": "v0", "served": False, "storage": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
    ]
    types = types_of(crd)
    assert [(t.version, t.conversion is None, t.subresources) for t in types] == [
        ("v1", True, ("status",)), ("v1alpha1", False, ())]
    assert types[0].custom is not None and "description" not in types[0].custom.schema
    assert types[0].custom.definition == "io.a.v1.Thing"
    view = types[1].conversion
    assert view is not None and view.from_storage({"apiVersion": "a.io/v1", "x": 1}) == {"apiVersion": "a.io/v1alpha1",
                                                                                        "x": 1}


def test_crd_strategy_checks_names_versions_and_immutable_scope() -> None:
    strategy = CustomResourceDefinitionStrategy(frozenset({"apps"}))
    crd = _crd("things.a.io", "things", "Thing", "")
    strategy.default(crd)
    assert crd["spec"]["names"]["listKind"] == "ThingList" and crd["spec"]["conversion"] == {"strategy": "None"}
    assert strategy.validate(crd) == []
    changed = {**crd, "spec": {**crd["spec"], "scope": "Cluster"}}
    assert [c.field for c in strategy.validate_update(changed, crd)] == ["spec.scope"]
    bad = _crd("things.a.io", "things", "Thing", "")
    bad["spec"]["group"] = "a"
    bad["spec"]["names"]["shortNames"] = ["Bad_Name"]
    bad["spec"]["versions"][0]["storage"] = False
    fields = {c.field for c in strategy.validate(bad)}
    assert {"spec.group", "metadata.name", "spec.names.shortNames[0]", "spec.versions"} <= fields


def test_a_crd_schema_becomes_server_side_apply_list_facts() -> None:
    from core.kube import schema as table
    from master.registry.customresources import apply_types

    types = apply_types("cr:x", SCHEMA)
    spec = types["cr:x.spec"]
    assert table.list_type(spec["workers"]) == (table.MAP_LIST, ("id",))
    assert table.list_type(spec["tags"]) == (table.SET_LIST, ())
    assert spec["workers"].type == "cr:x.spec.workers[]" and "cr:x.spec.workers[]" in types
    assert "size" not in spec  # a scalar patches the default way
    assert types["cr:x"]["spec"].type == "cr:x.spec"
    table.register(types)
    assert table.root_type("cr:x") == "cr:x"
    assert table.lookup("cr:x.spec", "workers") == spec["workers"]
    assert table.lookup("cr:x.spec", "unknown") == table.DEFAULT
