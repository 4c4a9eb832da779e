"""The Kubernetes API definitions of the served kinds, and server-side field validation against them.

The data under `master/registry/schemata/` is generated at development time by
`scripts/gen_schemas.py` from the official `kubernetes` client's models (derived
from the Kubernetes API definitions, Apache-2.0); the master never imports the
client. Two files, each loaded lazily and once:

* `structure.json` (≈40 KB): only field names and which fields nest further. It is
  all `unknown_fields` needs, so a master that never serves an OpenAPI document
  never parses the descriptions.
* `definitions.json` (≈390 KB): full Swagger-2.0-style schemas with descriptions
  and the `x-kubernetes-*` extensions, read by the OpenAPI documents.

`unknown_fields` runs on every write (`fieldValidation=Strict|Warn`), so each kind's
skeleton is compiled once into nested dicts and walked without allocation beyond
the paths it reports.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

Obj = dict[str, Any]

_DATA = "schemata"
_lock = threading.RLock()


def _read(name: str) -> Obj:
    text = resources.files("master.registry").joinpath(_DATA, name).read_bytes()
    data: Obj = json.loads(text)
    return data


@cache
def definitions() -> Obj:
    """Definition name → schema (Swagger 2.0 style; `$ref`s are bare definition names). Do not mutate."""
    with _lock:
        return _read("definitions.json")


@cache
def _structure() -> Obj:
    with _lock:
        return _read("structure.json")


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition of a kind, e.g. ("apps", "v1", "Deployment") → "io.k8s.api.apps.v1.Deployment"."""
    name = _structure()["kinds"].get(f"{group}/{version}/{kind}")
    return str(name) if name is not None else None


# ---- field validation ------------------------------------------------------------------------------

_LEAF = 0  # a scalar, or a map of scalars (labels, annotations, data): any key is fine
_ANY = 1  # x-kubernetes-preserve-unknown-fields-like: anything below is accepted


@dataclass(eq=False)
class _Type:
    """One compiled definition: field name → child spec."""

    name: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _List:
    item: Any


@dataclass(frozen=True)
class _Map:
    value: Any


def _compile(code: str, types: dict[str, _Type], raw: Obj) -> Any:
    if code == "":
        return _LEAF
    if code == "*":
        return _ANY
    if code.startswith("[]"):
        return _List(_compile(code[2:], types, raw))
    if code.startswith("{}"):
        return _Map(_compile(code[2:], types, raw))
    existing = types.get(code)
    if existing is not None:
        return existing
    compiled = types[code] = _Type(code)  # registered before its fields: types may recurse
    for name, sub in raw[code].items():
        compiled.fields[name] = _compile(sub, types, raw)
    return compiled


@cache
def _compiled_kind(group: str, version: str, kind: str) -> _Type | None:
    name = definition_name(group, version, kind)
    if name is None:
        return None
    types = _compiled_types()
    with _lock:
        compiled = _compile(name, types, _structure()["types"])
    return compiled if isinstance(compiled, _Type) else None


@cache
def _compiled_types() -> dict[str, _Type]:
    return {}


def unknown_fields(group: str, version: str, kind: str, obj: Obj) -> list[str]:
    """JSON paths of the fields in `obj` that the kind's schema does not declare, in document order.

    Paths read like Kubernetes' strict decoding errors: `spec.containers[0].imagee`,
    `metadata.labelz`, `foo`. Maps (labels, annotations, ConfigMap data, resource
    limits …) accept any key; free-form fields (a WatchEvent's object, managedFields'
    fieldsV1) accept anything. A kind without a schema yields no paths.
    """
    return _check(group, version, kind, obj, drop=False)


def drop_unknown_fields(group: str, version: str, kind: str, obj: Obj) -> list[str]:
    """Like `unknown_fields`, and removes those fields from `obj` in place.

    Kubernetes never stores a field its schema does not know: with `fieldValidation`
    Ignore or Warn (the default) the field is dropped, with Strict the request fails.
    """
    return _check(group, version, kind, obj, drop=True)


def _check(group: str, version: str, kind: str, obj: Obj, drop: bool) -> list[str]:
    root = _compiled_kind(group, version, kind)
    if root is None or not isinstance(obj, dict):
        return []
    out: list[str] = []
    _walk(root, obj, "", out, drop)
    return out


def _walk(t: _Type, obj: Obj, prefix: str, out: list[str], drop: bool) -> None:
    fields = t.fields
    unknown: list[str] = []
    for key, value in obj.items():
        spec = fields.get(key, None) if isinstance(key, str) else None
        if spec is None:
            out.append(f"{prefix}{key}")
            unknown.append(key)
        elif spec is not _LEAF and spec is not _ANY and value is not None:
            _descend(spec, value, f"{prefix}{key}", out, drop)
    if drop:
        for key in unknown:
            del obj[key]


def _descend(spec: Any, value: Any, path: str, out: list[str], drop: bool) -> None:
    if isinstance(spec, _Type):
        if isinstance(value, dict):
            _walk(spec, value, path + ".", out, drop)
    elif isinstance(spec, _List):
        if isinstance(value, list) and spec.item is not _LEAF and spec.item is not _ANY:
            for i, item in enumerate(value):
                if item is not None:
                    _descend(spec.item, item, f"{path}[{i}]", out, drop)
    elif isinstance(spec, _Map) and isinstance(value, dict) and spec.value is not _LEAF \
            and spec.value is not _ANY:
        for k, item in value.items():
            if item is not None:
                _descend(spec.value, item, f"{path}.{k}", out, drop)


def strict_error_message(kind: str, version: str, paths: list[str]) -> str:
    """The BadRequest message Kubernetes returns for `fieldValidation=Strict` with unknown fields."""
    fields = ", ".join(f'unknown field "{p}"' for p in paths)
    return f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {fields}'


def warning_headers(paths: list[str]) -> list[str]:
    """`Warning` header values for `fieldValidation=Warn` (one per unknown field, as Kubernetes sends)."""
    return ['299 - "unknown field \\"' + p.replace('"', '\\"') + '\\""' for p in paths]


FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
