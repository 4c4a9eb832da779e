"""Custom resources: the `ResourceType`s a set of CustomResourceDefinitions asks the API server to serve.

`served_types(crds)` turns CRD objects into catalog entries: one per served
version, the storage version stored as it is and the others as views of it
(the `None` conversion strategy: only `apiVersion` differs). Each carries a
`CustomKind` — the compact schema of its version, printer columns, scale paths —
and a `CustomResourceStrategy` that defaults, validates and keeps `status`
apart when the status subresource is on. Which CRD gets a contested name is
decided here too (`accepted_names`), the same way on every master: the oldest
CRD keeps its plural, kind and short names, a newer one claiming them is not
served and says why in its `NamesAccepted` condition.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from core import errors
from core.errors import Cause
from core.kube import schema as schema_table
from core.kube.schema import PatchMeta
from master.registry import crdschema
from master.registry.crds import default_columns, storage_version
from master.registry.resource import Context, ResourceType, Strategy
from master.registry.tables import NAME, Column, TableDef, since

Obj = dict[str, Any]


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class ScalePaths:
    spec_replicas: str
    status_replicas: str
    label_selector: str = ""


@dataclass(frozen=True)
class CustomKind:
    """What serving one version of a custom resource needs from its CRD."""

    crd_name: str
    schema: Obj = field(compare=False, hash=False)  # compact: no descriptions
    scale: ScalePaths | None = None
    definition: str = ""  # its OpenAPI definition name, e.g. com.example.stable.v1.CronTab

    def prune(self, obj: Obj) -> list[str]:
        return crdschema.prune(obj, self.schema)

    @property
    def apply_type(self) -> str:
        """The root of its list and map facts in `core.kube.schema` (server-side apply reads them there)."""
        return f"cr:{self.definition}"


def apply_types(root: str, schema: Obj) -> dict[str, dict[str, PatchMeta]]:
    """A custom resource's schema as `core.kube.schema` entries: keyed lists (`x-kubernetes-list-type: map`
    and its keys), sets, atomic lists (the default, as for any schema) and atomic maps; nested objects get
    entries of their own named by their path under `root`."""
    out: dict[str, dict[str, PatchMeta]] = {}

    def visit(name: str, node: Obj) -> None:
        fields: dict[str, PatchMeta] = {}
        for key, sub in _dict(node.get("properties")).items():
            meta = describe(f"{name}.{key}", sub)
            if meta != schema_table.DEFAULT:
                fields[key] = meta
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            meta = describe(f"{name}.*", extra)
            if meta != schema_table.DEFAULT:
                fields[schema_table.ANY_KEY] = meta
        out[name] = fields

    def nested(name: str, node: Any) -> str | None:
        if isinstance(node, dict) and (node.get("properties") or isinstance(node.get("additionalProperties"), dict)):
            visit(name, node)
            return name
        return None

    def describe(name: str, node: Any) -> PatchMeta:
        if not isinstance(node, dict):
            return schema_table.DEFAULT
        if node.get("x-kubernetes-map-type") == "atomic":
            return PatchMeta(atomic=True)
        if node.get("type") == "array":
            item_type = nested(name + "[]", node.get("items"))
            list_type = node.get("x-kubernetes-list-type", "atomic")
            keys = tuple(str(k) for k in _list(node.get("x-kubernetes-list-map-keys")))
            if list_type == "map" and keys:
                return PatchMeta(strategy=schema_table.MERGE, merge_key=keys[0], ssa_keys=keys, type=item_type)
            if list_type == "set":
                return PatchMeta(strategy=schema_table.MERGE, type=item_type)
            return PatchMeta(type=item_type)
        item = nested(name, node)
        return PatchMeta(type=item) if item else schema_table.DEFAULT

    visit(root, schema)
    return out


class NoneConversion:
    """A served version of a CRD other than its storage version: the same object, another apiVersion."""

    def __init__(self, storage_api_version: str, api_version: str) -> None:
        self.storage_version = storage_api_version
        self.api_version = api_version

    def from_storage(self, obj: Obj) -> Obj:
        return {**obj, "apiVersion": self.api_version}

    def to_storage(self, obj: Obj) -> Obj:
        return {**obj, "apiVersion": self.storage_version}


class CustomResourceStrategy(Strategy):
    """Defaulting and validation by the CRD's schema; `status` only through its subresource when that is on."""

    def __init__(self, kind: str, schema: Obj, status: bool, terminating: bool) -> None:
        self.kind = kind
        self.schema = schema
        self.has_status = status
        self.terminating = terminating

    def default(self, obj: Obj) -> None:
        crdschema.apply_defaults(obj, self.schema)

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        if self.terminating:
            raise errors.MethodNotAllowed(message="create not allowed while custom resource definition is "
                                                  "terminating")
        if self.has_status:
            obj.pop("status", None)

    def prepare_update(self, new: Obj, old: Obj, ctx: Context) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def prepare_status_update(self, new: Obj, old: Obj) -> Obj:
        merged = dict(old)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        return merged

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """Kubernetes bumps a custom resource's generation on any change outside metadata (and status, when
        that is a subresource)."""
        skip = {"metadata", "apiVersion", "kind"} | ({"status"} if self.has_status else set())
        return {k: v for k, v in new.items() if k not in skip} != {k: v for k, v in old.items() if k not in skip}

    def validate(self, obj: Obj) -> list[Cause]:
        return crdschema.validate(obj, self.schema)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []


# ---- printer columns ---------------------------------------------------------------------------------

_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*(?:\"([^\"]*)\"|'([^']*)')\)\]"
                   r"|\['([^']+)'\]")


def json_path(expr: str) -> list[tuple[str, Any]] | None:
    """The steps of the simple JSONPath printer columns use (`.a.b`, `[0]`, `[*]`, `['x.y']`,
    `[?(@.type=="Ready")]`); None when `expr` is more than that."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            return None
        if m.group(1) is not None:
            steps.append(("field", m.group(1)))
        elif m.group(2) is not None:
            steps.append(("all", None) if m.group(2) == "*" else ("index", int(m.group(2))))
        elif m.group(3) is not None:
            value = m.group(4) if m.group(4) is not None else m.group(5)
            steps.append(("filter", (m.group(3).split("."), value)))
        else:
            steps.append(("field", m.group(6)))
        pos = m.end()
    return steps


def evaluate(steps: list[tuple[str, Any]], obj: Any) -> list[Any]:
    values = [obj]
    for op, arg in steps:
        nxt: list[Any] = []
        for v in values:
            found = (op == "field" and isinstance(v, dict) and arg in v) or \
                (op == "index" and isinstance(v, list) and -len(v) <= arg < len(v))
            if found:
                nxt.append(v[arg])
            elif op == "all" and isinstance(v, list):
                nxt.extend(v)
            elif op == "filter" and isinstance(v, list):
                path, want = arg
                for item in v:
                    cur = item
                    for part in path:
                        cur = cur.get(part) if isinstance(cur, dict) else None
                    if cur is not None and str(cur) == want:
                        nxt.append(item)
        values = nxt
    return values


def _cell(steps: list[tuple[str, Any]] | None, typ: str) -> Any:
    def cell(obj: Obj, now: dt.datetime) -> Any:
        if steps is None:
            return None
        values = evaluate(steps, obj)
        if not values:
            return None
        if len(values) == 1:
            value = values[0]
            if typ in ("integer", "number", "boolean") and isinstance(value, (int, float, bool)):
                return value
            if typ == "date":  # shown as an age ("5d"), as kube-apiserver's table converter does
                return since(value, now) if isinstance(value, str) else None
            if isinstance(value, str):
                return value
            return json.dumps(value, separators=(",", ":"))
        return ",".join(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values)
    return cell


def printer_table(columns: list[Any]) -> TableDef:
    """The table `kubectl get` prints: Name, then the CRD's additionalPrinterColumns (or Name and Age)."""
    if not columns:
        return default_columns()
    out = [NAME]
    for col in columns:
        if not isinstance(col, dict):
            continue
        typ = str(col.get("type", "string"))
        out.append(Column(str(col.get("name", "")), _cell(json_path(str(col.get("jsonPath", ""))), typ),
                          type=typ, priority=int(col.get("priority") or 0), format=str(col.get("format") or ""),
                          description=str(col.get("description") or "")))
    return TableDef(tuple(out))


# ---- from CRDs to resource types -----------------------------------------------------------------------

def definition_name(group: str, version: str, kind: str) -> str:
    """The OpenAPI definition name Kubernetes gives a custom kind: reversed group, version, kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


def accepted_names(crds: list[Obj]) -> dict[str, str]:
    """CRD name → "" if its names are its own, else the reason (condition reason: message) they are not.

    The oldest CRD (creationTimestamp, then name) keeps a name; the same decision on every master."""
    ordered = sorted(crds, key=lambda c: (str(_dict(c.get("metadata")).get("creationTimestamp", "")),
                                          str(_dict(c.get("metadata")).get("name", ""))))
    taken: dict[tuple[str, str], str] = {}
    out: dict[str, str] = {}
    for crd in ordered:
        spec = _dict(crd.get("spec"))
        group, names = str(spec.get("group", "")), _dict(spec.get("names"))
        # In the order Kubernetes' naming controller looks at them.
        claims = [("PluralConflict", "plural", names.get("plural")),
                  ("SingularConflict", "plural", names.get("singular")),
                  *[("ShortNamesConflict", "plural", s) for s in _list(names.get("shortNames"))],
                  ("KindConflict", "kind", names.get("kind")), ("ListKindConflict", "kind", names.get("listKind"))]
        problem = ""
        for reason, space, value in claims:
            if value and taken.get((group, f"{space}:{value}")) not in (None, crd["metadata"]["name"]):
                problem = f'{reason}: "{value}" is already in use'
                break
        name = str(crd["metadata"]["name"])
        out[name] = problem
        if not problem:
            for _, space, value in claims:
                if value:
                    taken[(group, f"{space}:{value}")] = name
    return out


def served_types(crds: list[Obj]) -> list[ResourceType]:
    """The resource types of every CRD whose names are accepted (storage version first in each)."""
    verdicts = accepted_names(crds)
    out: list[ResourceType] = []
    for crd in crds:
        if not verdicts.get(str(crd["metadata"]["name"])):
            out += types_of(crd)
    return out


def types_of(crd: Obj) -> list[ResourceType]:
    spec = _dict(crd.get("spec"))
    group, names = str(spec.get("group", "")), _dict(spec.get("names"))
    kind, plural = str(names.get("kind", "")), str(names.get("plural", ""))
    namespaced = spec.get("scope") == "Namespaced"
    stored = storage_version(crd)
    terminating = bool(_dict(crd.get("metadata")).get("deletionTimestamp"))
    crd_name = str(crd["metadata"]["name"])
    versions = [v for v in _list(spec.get("versions")) if isinstance(v, dict) and v.get("served") is True]
    versions.sort(key=lambda v: v.get("name") != stored)  # the storage version first: discovery's preferred
    out: list[ResourceType] = []
    for v in versions:
        version = str(v["name"])
        schema = crdschema.compact(_dict(_dict(v.get("schema")).get("openAPIV3Schema")))
        subs = _dict(v.get("subresources"))
        scale_spec = subs.get("scale") if isinstance(subs.get("scale"), dict) else None
        scale = ScalePaths(str(scale_spec.get("specReplicasPath", "")), str(scale_spec.get("statusReplicasPath", "")),
                           str(scale_spec.get("labelSelectorPath") or "")) if scale_spec else None
        subresources = tuple(s for s, on in (("status", "status" in subs), ("scale", scale is not None)) if on)
        custom = CustomKind(crd_name, schema, scale, definition_name(group, version, kind))
        schema_table.register(apply_types(custom.apply_type, schema))
        conversion = None if version == stored else NoneConversion(f"{group}/{stored}", f"{group}/{version}")
        out.append(ResourceType(
            group, version, kind, plural, namespaced,
            tuple(str(s) for s in _list(names.get("shortNames"))),
            tuple(str(c) for c in _list(names.get("categories"))),
            subresources, CustomResourceStrategy(kind, schema, "status" in subs, terminating),
            table=printer_table(_list(v.get("additionalPrinterColumns"))), conversion=conversion, custom=custom))
    return out
