"""Structural OpenAPI v3 schemas of CustomResourceDefinitions: checked, then used to prune, default and validate.

A CRD's `openAPIV3Schema` is the only thing that tells the API server what a
custom resource may hold. Kubernetes requires it to be *structural* (every
field has a type; `allOf`/`anyOf`/`oneOf`/`not` only add value checks; root
`metadata` restricts at most `name` and `generateName`) so that it can:

* prune fields the schema does not name (unless `x-kubernetes-preserve-unknown-fields`),
* apply `default`s,
* validate values: type, `enum`, `pattern`, `format` (the common ones), minimum/maximum,
  lengths, item and property counts, `required`, `nullable`, `x-kubernetes-int-or-string`,
  and the uniqueness that `x-kubernetes-list-type: set|map` promise.

The messages follow Kubernetes' (kube-openapi's validator and apiextensions'
structural checks) so a user reads what they would read from a real cluster.
CEL rules (`x-kubernetes-validations`) are refused when the CRD is written, not
silently ignored. Schemas are held without their descriptions (`compact`): on a
1 GB board a cert-manager-sized CRD would otherwise cost megabytes of dicts.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from core.errors import Cause

Obj = dict[str, Any]

_TYPES = ("object", "array", "string", "integer", "number", "boolean")
# Keys that may appear inside allOf/anyOf/oneOf/not: value checks only (Kubernetes' structural rules).
_VALUE_KEYS = frozenset({"enum", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                         "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
                         "multipleOf", "minProperties", "maxProperties", "required", "properties", "items",
                         "allOf", "anyOf", "oneOf", "not"})
_DOC_KEYS = ("description", "example", "externalDocs", "title")
_LOGICAL = ("allOf", "anyOf", "oneOf")


# ---- the schema itself ---------------------------------------------------------------------------------

def compact(schema: Any) -> Any:
    """The schema without what only documents it (descriptions, examples): what the master keeps.

    Keys and short strings are interned: a schema repeats "type", "string", "object" and its
    field names thousands of times, and the decoded CRD held one string object per occurrence."""
    if isinstance(schema, dict):
        return {sys.intern(k): (v if k in ("default", "enum") else compact(v)) for k, v in schema.items()
                if k not in _DOC_KEYS}
    if isinstance(schema, list):
        return [compact(v) for v in schema]
    if isinstance(schema, str) and len(schema) <= 64:
        return sys.intern(schema)
    return schema


def structural_errors(schema: Any, path: str) -> list[Cause]:
    """Why `schema` (a version's openAPIV3Schema, at field path `path`) is not a structural schema."""
    out: list[Cause] = []
    if not isinstance(schema, dict):
        return [Cause(path, "Required value: schemas are required")]
    if schema.get("type") != "object":
        out.append(Cause(f"{path}.type", 'Unsupported value: "' + str(schema.get("type", "")) +
                         '": supported values: "object"'))
    _node(schema, path, out, root=True, in_logic=False)
    meta = (schema.get("properties") or {}).get("metadata")
    if isinstance(meta, dict):
        mpath = f"{path}.properties[metadata]"
        for key in meta:
            if key not in ("type", "properties", "description"):
                out.append(Cause(f"{mpath}.{key}", "Forbidden: must not be specified at the root's metadata"))
        for name in meta.get("properties") or {}:
            if name not in ("name", "generateName"):
                out.append(Cause(f"{mpath}.properties[{name}]",
                                 "Forbidden: only name and generateName may be restricted at the root's metadata"))
    return out


def _node(s: Obj, path: str, out: list[Cause], root: bool, in_logic: bool) -> None:
    if "$ref" in s:
        out.append(Cause(f"{path}.$ref", "Forbidden: $ref is not supported"))
    if "x-kubernetes-validations" in s:
        out.append(Cause(f"{path}.x-kubernetes-validations",
                         "Forbidden: CEL validation rules are not supported by pikube (drop them, or check "
                         "the values with enum, pattern and minimum/maximum)"))
    if in_logic:
        for key in s:
            if key not in _VALUE_KEYS and key not in _DOC_KEYS:
                out.append(Cause(f"{path}.{key}", "Forbidden: must be empty to be structural"))
    else:
        typ = s.get("type", "")
        int_or_string = s.get("x-kubernetes-int-or-string") is True
        preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
        if int_or_string and typ:
            out.append(Cause(f"{path}.type", "Invalid value: \"" + str(typ) +
                             "\": must be empty if x-kubernetes-int-or-string is true"))
        elif not typ and not int_or_string and not preserve and not root:
            out.append(Cause(f"{path}.type", "Required value: must not be empty for specified object fields"))
        elif typ and typ not in _TYPES:
            out.append(Cause(f"{path}.type", 'Unsupported value: "' + str(typ) + '": supported values: "' +
                             '", "'.join(_TYPES) + '"'))
        if "properties" in s and isinstance(s.get("additionalProperties"), (dict, bool)) \
                and s.get("additionalProperties") is not True:
            out.append(Cause(f"{path}.additionalProperties",
                             "Forbidden: additionalProperties and properties are mutual exclusive"))
        list_type = s.get("x-kubernetes-list-type")
        if list_type is not None:
            if list_type not in ("atomic", "set", "map"):
                out.append(Cause(f"{path}.x-kubernetes-list-type", f'Unsupported value: "{list_type}": supported '
                                 'values: "atomic", "set", "map"'))
            elif typ != "array":
                out.append(Cause(f"{path}.x-kubernetes-list-type",
                                 "Invalid value: \"" + str(list_type) + "\": must only be used if type is array"))
            elif list_type == "map":
                keys = s.get("x-kubernetes-list-map-keys")
                item: Obj = s["items"] if isinstance(s.get("items"), dict) else {}
                if not keys:
                    out.append(Cause(f"{path}.x-kubernetes-list-map-keys",
                                     "Required value: must not be empty if x-kubernetes-list-type is map"))
                for key in keys or []:
                    if key not in (item.get("properties") or {}):
                        out.append(Cause(f"{path}.x-kubernetes-list-map-keys",
                                         f'Invalid value: "{key}": entries must all be names of item properties'))
        if "default" in s and root:
            out.append(Cause(f"{path}.default", "Forbidden: must not be set at the root"))
        pattern = s.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                out.append(Cause(f"{path}.pattern", f'Invalid value: "{pattern}": must be a valid regular '
                                                    f"expression, but isn't: {exc}"))
    for name, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            _node(sub, f"{path}.properties[{name}]", out, False, in_logic)
    items = s.get("items")
    if isinstance(items, dict):
        _node(items, f"{path}.items", out, False, in_logic)
    elif isinstance(items, list):
        out.append(Cause(f"{path}.items", "Forbidden: items must be a schema object and not an array"))
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        _node(extra, f"{path}.additionalProperties", out, False, in_logic)
    for key in _LOGICAL:
        for i, sub in enumerate(s.get(key) or []):
            if isinstance(sub, dict):
                _node(sub, f"{path}.{key}[{i}]", out, False, True)
    if isinstance(s.get("not"), dict):
        _node(s["not"], f"{path}.not", out, False, True)


# ---- pruning -----------------------------------------------------------------------------------------

def prune(obj: Obj, schema: Obj) -> list[str]:
    """Remove from a custom resource the fields its schema does not name; their paths, in document order.

    `apiVersion`, `kind` and `metadata` at the root (and in `x-kubernetes-embedded-resource`
    objects) are the API server's business and always kept.
    """
    out: list[str] = []
    _prune_object(obj, schema, "", out, root=True)
    return out


def _prune_object(obj: Obj, s: Obj, prefix: str, out: list[str], root: bool = False) -> None:
    props = s.get("properties") or {}
    extra = s.get("additionalProperties")
    keep_all = s.get("x-kubernetes-preserve-unknown-fields") is True or extra is True
    embedded = root or s.get("x-kubernetes-embedded-resource") is True
    for key in list(obj):
        value = obj[key]
        sub = props.get(key)
        if embedded and key in ("apiVersion", "kind", "metadata") and sub is None:
            continue
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is None:
            if not keep_all:
                out.append(f"{prefix}{key}")
                del obj[key]
            continue
        _prune_value(value, sub, f"{prefix}{key}", out)


def _prune_value(value: Any, s: Obj, path: str, out: list[str]) -> None:
    if isinstance(value, dict) and (s.get("type") == "object" or "properties" in s
                                    or isinstance(s.get("additionalProperties"), dict)):
        _prune_object(value, s, path + ".", out)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        for i, item in enumerate(value):
            _prune_value(item, s["items"], f"{path}[{i}]", out)


# ---- defaults ----------------------------------------------------------------------------------------

def apply_defaults(obj: Any, schema: Obj) -> None:
    """Fill absent fields that have a `default` in the schema, in place, depth first (as Kubernetes does)."""
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if name not in obj and "default" in sub:
                obj[name] = json.loads(json.dumps(sub["default"]))
            if name in obj:
                apply_defaults(obj[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and "properties" not in schema:
            for value in obj.values():
                apply_defaults(value, extra)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            apply_defaults(item, schema["items"])


# ---- validation --------------------------------------------------------------------------------------

def validate(obj: Obj, schema: Obj) -> list[Cause]:
    """Field errors of a custom resource against its schema (metadata is checked elsewhere)."""
    out: list[Cause] = []
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    _check_object(body, schema, "", out, root=True)
    return out


def _go_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown(value: Any) -> str:
    """A value as Kubernetes' field errors print it (strings quoted, numbers bare)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "null"
    return '"' + _go_type(value) + '"'


def _name(path: str) -> str:
    return path or "<root>"


def _check_object(obj: Obj, s: Obj, prefix: str, out: list[Cause], root: bool = False) -> None:
    for name in s.get("required") or []:
        if name not in obj and not (root and name in ("apiVersion", "kind", "metadata")):
            out.append(Cause(f"{prefix}{name}", "Required value"))
    props = s.get("properties") or {}
    extra = s.get("additionalProperties")
    for key, value in obj.items():
        sub = props.get(key)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if isinstance(sub, dict):
            check_value(value, sub, f"{prefix}{key}", out)
    count = len(obj)
    path = prefix[:-1] if prefix.endswith(".") else prefix
    if isinstance(s.get("minProperties"), int) and count < s["minProperties"]:
        out.append(Cause(_name(path), f"Invalid value: {count}: {_name(path)} in body should have at least "
                                      f"{s['minProperties']} properties"))
    if isinstance(s.get("maxProperties"), int) and count > s["maxProperties"]:
        out.append(Cause(_name(path), f"Too many: {count}: must have at most {s['maxProperties']} items"))


def check_value(value: Any, s: Obj, path: str, out: list[Cause]) -> None:
    """Validate one value at `path` against schema node `s` (recursing into objects and lists)."""
    if value is None:
        if s.get("nullable") is True or (s.get("x-kubernetes-preserve-unknown-fields") is True and not s.get("type")):
            return
        if s.get("type") or s.get("x-kubernetes-int-or-string"):
            want = s.get("type") or "string"
            out.append(Cause(path, f'Invalid value: "null": {path} in body must be of type {want}: "null"'))
        return
    typ = s.get("type", "")
    actual = _go_type(value)
    if s.get("x-kubernetes-int-or-string") is True:
        if actual not in ("integer", "string"):
            out.append(Cause(path, f'Invalid value: "{actual}": {path} in body must be of type integer,string: '
                                   f'"{actual}"'))
            return
    elif typ and actual != typ and not (typ == "number" and actual == "integer"):
        out.append(Cause(path, f'Invalid value: "{actual}": {path} in body must be of type {typ}: "{actual}"'))
        return
    enum = s.get("enum")
    if isinstance(enum, list) and value not in enum:
        allowed = ", ".join(_shown(v) for v in enum)
        out.append(Cause(path, f"Unsupported value: {_shown(value)}: supported values: {allowed}"))
    if isinstance(value, str):
        _check_string(value, s, path, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, s, path, out)
    elif isinstance(value, list):
        _check_list(value, s, path, out)
    elif isinstance(value, dict):
        _check_object(value, s, path + ".", out)
    for sub in s.get("allOf") or []:
        if isinstance(sub, dict):
            check_value(value, sub, path, out)
    any_of = [sub for sub in s.get("anyOf") or [] if isinstance(sub, dict)]
    if any_of and not any(_passes(value, sub, path) for sub in any_of):
        out.append(Cause(path, f'Invalid value: {_shown(value)}: {path} in body must match at least one schema '
                               "in anyOf"))
    one_of = [sub for sub in s.get("oneOf") or [] if isinstance(sub, dict)]
    if one_of and sum(_passes(value, sub, path) for sub in one_of) != 1:
        out.append(Cause(path, f'Invalid value: {_shown(value)}: {path} in body must validate one and only one '
                               "schema (oneOf)"))
    if isinstance(s.get("not"), dict) and _passes(value, s["not"], path):
        out.append(Cause(path, f'Invalid value: {_shown(value)}: {path} in body must not validate the schema (not)'))


def _passes(value: Any, s: Obj, path: str) -> bool:
    inner: list[Cause] = []
    check_value(value, s, path, inner)
    return not inner


def _check_string(value: str, s: Obj, path: str, out: list[Cause]) -> None:
    n = len(value)
    if isinstance(s.get("minLength"), int) and n < s["minLength"]:
        out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should be at least "
                               f"{s['minLength']} chars long"))
    if isinstance(s.get("maxLength"), int) and n > s["maxLength"]:
        out.append(Cause(path, f"Too long: may not be more than {s['maxLength']} bytes"))
    pattern = s.get("pattern")
    if isinstance(pattern, str) and _regex(pattern).search(value) is None:
        out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should match '{pattern}'"))
    fmt = s.get("format")
    check = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    if check is not None and not check(value):
        out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body must be of type {fmt}: "
                               f"{_shown(value)}"))


def _check_number(value: float, s: Obj, path: str, out: list[Cause]) -> None:
    low, high = s.get("minimum"), s.get("maximum")
    if isinstance(low, (int, float)):
        if s.get("exclusiveMinimum") is True and value <= low:
            out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should be greater than {low}"))
        elif value < low:
            out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should be greater than or "
                                   f"equal to {low}"))
    if isinstance(high, (int, float)):
        if s.get("exclusiveMaximum") is True and value >= high:
            out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should be less than {high}"))
        elif value > high:
            out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should be less than or "
                                   f"equal to {high}"))
    step = s.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0 and (value / step) != int(value / step):
        out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body should be a multiple of {step}"))
    if s.get("format") == "int32" and isinstance(value, int) and not -2**31 <= value < 2**31:
        out.append(Cause(path, f"Invalid value: {_shown(value)}: {path} in body must be of type int32: "
                               f"{_shown(value)}"))


def _check_list(value: list[Any], s: Obj, path: str, out: list[Cause]) -> None:
    n = len(value)
    if isinstance(s.get("minItems"), int) and n < s["minItems"]:
        out.append(Cause(path, f"Invalid value: {n}: {path} in body should have at least {s['minItems']} items"))
    if isinstance(s.get("maxItems"), int) and n > s["maxItems"]:
        out.append(Cause(path, f"Too many: {n}: must have at most {s['maxItems']} items"))
    items = s.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            check_value(item, items, f"{path}[{i}]", out)
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "set" or s.get("uniqueItems") is True:
        seen: list[Any] = []
        for i, item in enumerate(value):
            if item in seen:
                out.append(Cause(f"{path}[{i}]", f"Duplicate value: {_shown(item)}"))
            else:
                seen.append(item)
    elif list_type == "map":
        keys = [k for k in s.get("x-kubernetes-list-map-keys") or [] if isinstance(k, str)]
        seen_keys: list[tuple[Any, ...]] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = tuple(item.get(k) for k in keys)
            if key in seen_keys:
                shown = ", ".join(f'"{k}":{json.dumps(item.get(k))}' for k in keys)
                out.append(Cause(f"{path}[{i}]", "Duplicate value: map[string]interface {}{" + shown + "}"))
            else:
                seen_keys.append(key)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _date_time(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or " " in value


def _date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _date_time,
    "date": _date,
    "uuid": lambda v: re.fullmatch(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                                   r"[0-9a-fA-F]{12}", v) is not None,
    "byte": lambda v: re.fullmatch(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", v) is not None,
}
