"""OpenAPI documents built from the catalog and the generated definitions, serialized once and cached.

* `v3(gv)`: an OpenAPI 3.0 document per group-version (what kubectl ≥ 1.27 reads
  for `explain`, apply's field-validation check and client-side validation, and what
  schemathesis tests against). Components are the definitions its paths reach;
  `$ref`s with a description beside them are wrapped in `allOf`, as the real API
  server writes them, so kubectl shows the field's own description.
* `v2()`: one Swagger 2.0 document with every path and definition (kubectl < 1.27,
  and the protobuf rendering kubectl 1.20 asks for, see `master.api.schema_proto`).

Documents are built on first request and kept only as gzip-compressed bytes (≈ 250 KB
for all of them; the dicts are dropped): HTTP clients that accept gzip — kubectl,
client-go, requests — get those bytes as they are, others a decompressed copy.
A master that is never asked for a document never builds one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from master.api import discovery, schema_custom, schema_proto
from master.api.schema_paths import (
    JSON,
    PATCH_TYPES,
    STATUS,
    Body,
    Operation,
    Param,
    PathItem,
    json_patch_schema,
    paths,
)
from master.registry import schemas
from master.registry.catalog import Catalog

Obj = dict[str, Any]

PATCH_DEFINITION = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
_INTORSTR = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# OpenAPI 3 can say what these accept, which Swagger 2.0 could only name by format.
_V3_ONE_OF = {_INTORSTR: [{"type": "integer"}, {"type": "string"}],
              _QUANTITY: [{"type": "string"}, {"type": "number"}]}


@dataclass(frozen=True)
class Rendered:
    gzipped: bytes
    digest: str  # upper-case hex SHA-512 of the JSON, as the real server puts in serverRelativeURL

    @property
    def body(self) -> bytes:
        return gzip.decompress(self.gzipped)


class LazyMap(Mapping[str, Any]):
    """A mapping whose values are converted when read: a document's definitions and paths.

    Rendering then holds one converted definition at a time instead of the whole
    converted tree, which keeps the master's memory high-water mark down.
    """

    def __init__(self, keys: Iterable[str], convert: Callable[[str], Any]) -> None:
        self._keys = sorted(keys)
        self._known = frozenset(self._keys)
        self._convert = convert

    def __getitem__(self, key: str) -> Any:
        if key not in self._known:
            raise KeyError(key)
        return self._convert(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _dump(obj: Any) -> Iterator[str]:
    """Compact JSON with sorted keys, converting `LazyMap` values one at a time."""
    if isinstance(obj, (dict, LazyMap)):
        yield "{"
        for i, key in enumerate(sorted(obj) if isinstance(obj, dict) else obj):
            yield ("," if i else "") + json.dumps(key) + ":"
            yield from _dump(obj[key])
        yield "}"
    else:
        yield json.dumps(obj, separators=(",", ":"), sort_keys=True)


def _rendered(doc: Obj) -> Rendered:
    body = "".join(_dump(doc)).encode()
    return Rendered(gzip.compress(body, compresslevel=6, mtime=0), hashlib.sha512(body).hexdigest().upper())


def gv_path(gv: str) -> str:
    """"v1" → "api/v1", "apps/v1" → "apis/apps/v1" (the keys of the /openapi/v3 index)."""
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"


class Documents:
    """The OpenAPI documents of one catalog, rendered lazily and cached as bytes."""

    def __init__(self, catalog: Catalog, load_crd: Callable[[str], Obj | None] | None = None) -> None:
        self.catalog = catalog
        self._load_crd = load_crd or (lambda name: None)
        self._lock = threading.Lock()
        self._generation = catalog.generation
        self._v3: dict[str, Rendered] = {}
        self._v2: Rendered | None = None
        self._v2_pb: Rendered | None = None

    def _current(self) -> None:
        """Forget the renderings when the custom resources changed (call with the lock held)."""
        if self._generation != self.catalog.generation:
            self._generation = self.catalog.generation
            self._v3, self._v2, self._v2_pb = {}, None, None

    def _definitions(self) -> tuple[Obj, frozenset[str]]:
        """Every definition (built-in and custom) and the names of the custom ones."""
        custom = schema_custom.definitions(self.catalog, self._load_crd)
        if not custom:
            return schemas.definitions(), frozenset()
        return {**schemas.definitions(), **custom}, frozenset(custom)

    def group_versions(self) -> list[str]:
        out: list[str] = []
        for rt in self.catalog:
            if rt.group_version not in out:
                out.append(rt.group_version)
        return out

    # ---- cached renderings -------------------------------------------------------------------------
    def v3(self, gv: str) -> Rendered | None:
        if gv not in self.group_versions():
            return None
        with self._lock:
            self._current()
            if gv not in self._v3:
                self._v3[gv] = _rendered(self.v3_document(gv))
            return self._v3[gv]

    def v3_index(self) -> Obj:
        out: Obj = {}
        for gv in self.group_versions():
            rendered = self.v3(gv)
            assert rendered is not None
            out[gv_path(gv)] = {"serverRelativeURL": f"/openapi/v3/{gv_path(gv)}?hash={rendered.digest}"}
        return {"paths": out}

    def v2(self) -> Rendered:
        with self._lock:
            self._current()
            if self._v2 is None:
                self._v2 = _rendered(self.v2_document())
            return self._v2

    def v2_protobuf(self) -> Rendered:
        """The gnostic protobuf encoding (`body`/`gzipped` are protobuf bytes, not JSON)."""
        with self._lock:
            self._current()
            if self._v2_pb is None:
                data = schema_proto.encode_document(self.v2_document())
                self._v2_pb = Rendered(gzip.compress(data, compresslevel=6, mtime=0),
                                       hashlib.sha512(data).hexdigest().upper())
            return self._v2_pb

    # ---- documents -----------------------------------------------------------------------------------
    def _paths(self, gv: str | None) -> dict[str, PathItem]:
        out: dict[str, PathItem] = {}
        for rt in self.catalog:
            if gv is None or rt.group_version == gv:
                out.update(paths(rt))
        return dict(sorted(out.items()))

    def _info(self) -> Obj:
        return {"title": "pikube", "version": discovery.version_info()["gitVersion"]}

    def v3_document(self, gv: str) -> Obj:
        """The OpenAPI 3.0 document of a group-version (`paths` and schemas convert as they are read)."""
        items = self._paths(gv)
        defs, _ = self._definitions()
        names = _closure(_refs(items), defs)
        return {"openapi": "3.0.0", "info": self._info(),
                "paths": LazyMap(items, lambda p: _v3_path(items[p])),
                "components": {"schemas": LazyMap(names, lambda n: _v3_schema(defs[n], top=n))}}

    def v2_document(self) -> Obj:
        """The Swagger 2.0 document (`paths` and `definitions` convert as they are read)."""
        items = self._paths(None)
        defs, custom = self._definitions()

        def definition(name: str) -> Obj:
            if name == PATCH_DEFINITION:
                return {"description": "Patch is provided to give a concrete name and type to the Kubernetes "
                                       "PATCH request body."}
            return _v2_schema(schema_custom.to_v2(defs[name]) if name in custom else defs[name])

        return {"swagger": "2.0", "info": self._info(), "paths": LazyMap(items, lambda p: _v2_path(items[p])),
                "definitions": LazyMap([*defs, PATCH_DEFINITION], definition)}


# ---- definitions ---------------------------------------------------------------------------------------

def _refs(items: dict[str, PathItem]) -> set[str]:
    found: set[str] = {STATUS}
    for item in items.values():
        for op in item.operations:
            if op.body is not None:
                _collect(op.body.schema, found)
            for schema in op.responses.values():
                _collect(schema, found)
    return found


def _collect(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str):
            found.add(target)
        for v in node.values():
            _collect(v, found)
    elif isinstance(node, list):
        for v in node:
            _collect(v, found)


def _closure(roots: set[str], defs: Obj) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        inner: set[str] = set()
        _collect(defs[name], inner)
        todo.extend(inner - seen)
    return seen


def _v2_schema(schema: Obj) -> Obj:
    out: Obj = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = "#/definitions/" + value
        elif key == "properties":
            out[key] = {n: _v2_schema(p) for n, p in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _v2_schema(value)
        else:
            out[key] = value
    return out


def _v3_schema(schema: Obj, top: str = "") -> Obj:
    if "$ref" in schema:
        target = {"$ref": "#/components/schemas/" + schema["$ref"]}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return {"allOf": [target], **rest} if rest else target
    out: Obj = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {n: _v3_schema(p) for n, p in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _v3_schema(value)
        else:
            out[key] = value
    if top in _V3_ONE_OF:
        out.pop("type", None)
        out["oneOf"] = _V3_ONE_OF[top]
    return out


# ---- paths ---------------------------------------------------------------------------------------------

def _gvk(op: Operation) -> Obj:
    group, version, kind = op.gvk
    return {"group": group, "version": version, "kind": kind}


def _v3_param(p: Param) -> Obj:
    out: Obj = {"name": p.name, "in": p.where, "description": p.description, "schema": _v3_schema(p.schema)}
    if p.required:
        out["required"] = True
    return out


def _v3_body(body: Body) -> Obj:
    content: Obj = {}
    for media in body.media_types:
        if media == "application/json-patch+json":
            content[media] = {"schema": json_patch_schema()}
        elif media in PATCH_TYPES:
            content[media] = {"schema": {"type": "object"}}
        else:
            content[media] = {"schema": _v3_schema(body.schema)}
    out: Obj = {"content": content}
    if body.required:
        out["required"] = True
    return out


def _v3_responses(op: Operation) -> Obj:
    out: Obj = {}
    for code, schema in op.responses.items():
        out[code] = {"description": _DESCRIPTIONS.get(code, "OK"),
                     "content": {media: {"schema": _v3_schema(schema)} for media in op.produces}}
    out["401"] = {"description": "Unauthorized"}
    out["default"] = {"description": "Error", "content": {JSON: {"schema": _v3_schema({"$ref": STATUS})}}}
    return out


_DESCRIPTIONS = {"200": "OK", "201": "Created", "202": "Accepted"}


def _v3_path(item: PathItem) -> Obj:
    out: Obj = {"parameters": [_v3_param(p) for p in item.params]}
    for op in item.operations:
        entry: Obj = {"operationId": op.operation_id, "description": op.description,
                      "tags": [_tag(op)], "parameters": [_v3_param(p) for p in op.params],
                      "responses": _v3_responses(op), "x-kubernetes-action": op.action,
                      "x-kubernetes-group-version-kind": _gvk(op)}
        if not op.params:
            del entry["parameters"]
        if op.body is not None:
            entry["requestBody"] = _v3_body(op.body)
        out[op.method] = entry
    return out


def _tag(op: Operation) -> str:
    group, version, _ = op.gvk
    return f"{group.split('.', 1)[0] or 'core'}_{version}"


def _v2_param(p: Param) -> Obj:
    out: Obj = {"name": p.name, "in": p.where, "description": p.description, "type": p.schema["type"]}
    if "enum" in p.schema:
        out["enum"] = p.schema["enum"]
    if p.required:
        out["required"] = True
    out["uniqueItems"] = True
    return out


def _v2_path(item: PathItem) -> Obj:
    out: Obj = {"parameters": [_v2_param(p) for p in item.params]}
    for op in item.operations:
        params = [_v2_param(p) for p in op.params]
        if op.body is not None:
            schema = {"$ref": "#/definitions/" + PATCH_DEFINITION} if op.method == "patch" \
                else _v2_schema(op.body.schema)
            body: Obj = {"name": "body", "in": "body", "schema": schema}
            if op.body.required:
                body["required"] = True
            params.insert(0, body)
        entry: Obj = {"operationId": op.operation_id, "description": op.description, "tags": [_tag(op)],
                      "consumes": list(op.body.media_types) if op.body is not None else ["*/*"],
                      "produces": list(op.produces), "schemes": ["https"],
                      "responses": {**{code: {"description": _DESCRIPTIONS.get(code, "OK"),
                                              "schema": _v2_schema(schema)}
                                       for code, schema in op.responses.items()},
                                    "401": {"description": "Unauthorized"}},
                      "x-kubernetes-action": op.action, "x-kubernetes-group-version-kind": _gvk(op)}
        if params:
            entry["parameters"] = params
        out[op.method] = entry
    return out
