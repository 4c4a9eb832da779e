"""Kubernetes strategic merge patch, the format `kubectl apply` and `kubectl patch` send by default.

A JSON merge patch replaces lists whole; this one merges the lists the type
table (`schema`) marks as merge lists: lists of objects by their merge key
(`containers` by `name`, `ports` by `containerPort`), lists of primitives as
sets (`finalizers`). Directives in the patch:

- `$patch: replace` in a map replaces the map; as a list element, the list.
- `$patch: delete` in a map empties it; as a list element with the merge key,
  removes the matching elements.
- `$patch: merge` asks for the default merge (accepted and ignored; Go's
  implementation rejects it).
- `$deleteFromPrimitiveList/<field>: [..]` removes those values from a
  primitive merge list.
- `$setElementOrder/<field>: [..]` fixes the order of a merged list; elements
  it does not name (the server's own) keep their place relative to the rest.
- `$retainKeys: [..]` drops every key of the map not named (a Deployment's
  `strategy` switching from RollingUpdate to Recreate).
- `null` deletes a map key.

The algorithm and the ordering rules follow
`k8s.io/apimachinery/pkg/util/strategicpatch` (what the API server runs), with
three deliberate differences: a value added where the original had none is
cleaned of directives and nulls (Go stores it raw), `$patch: merge` is a
no-op, and keys starting with `$` that are no directive are dropped (Go drops
them when decoding into the typed object). Kinds not in the table (custom
resources, which Kubernetes refuses to strategic-patch) patch with lists
replaced. Malformed patches raise `core.errors.BadRequest` with Go's
messages (the API server answers 400).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any

from core import errors
from core.kube import schema
from core.kube._json import copy_json, json_equal, kind_of

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def _bad(message: str) -> errors.BadRequest:
    return errors.BadRequest(message=message)


def _go(value: Any) -> str:
    """A value as Go's `%v` prints a decoded JSON value (for error messages worded like Kubernetes')."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def strategic_merge_patch(original: Mapping[str, Any], patch: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """`original` with `patch` applied by the strategic merge rules of `kind`, as a new object."""
    if not isinstance(patch, Mapping):
        raise _bad("invalid JSON document")
    base = copy_json(original) if isinstance(original, Mapping) else {}
    return _merge_map(base, copy_json(patch), schema.root_type(kind))


def _merge_map(original: dict[str, Any], patch: dict[str, Any], type_name: str | None) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive not in ("replace", "delete", "merge"):
            raise _bad(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")
        del patch[DIRECTIVE]
        if directive == "replace":
            return _merge_map({}, patch, type_name)
        if directive == "delete":
            return {}
    _retain_keys(original, patch)
    _set_element_order(original, patch, type_name)
    _delete_from_primitive_lists(original, patch)
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            original.pop(key, None)
            continue
        original[key] = _merge_value(original.get(key), value, schema.lookup(type_name, key))
    return original


def _merge_value(current: Any, value: Any, meta: schema.PatchMeta) -> Any:
    if isinstance(value, dict):
        if meta.strategy == schema.REPLACE or not isinstance(current, dict):
            return _merge_map({}, value, meta.type)
        return _merge_map(current, value, meta.type)
    if isinstance(value, list):
        return _merge_list(current if isinstance(current, list) else [], value, meta)
    return value


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise _bad("invalid patch format of retainKeys")
    allowed = {k for k in keep if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_PRIMITIVE, SET_ORDER)):
            continue
        if key not in allowed:
            raise _bad("invalid patch format of retainKeys")
    for key in [k for k in original if k not in allowed]:
        del original[key]


def _delete_from_primitive_lists(original: dict[str, Any], patch: dict[str, Any]) -> None:
    for directive in [k for k in patch if k.startswith(DELETE_PRIMITIVE)]:
        values = patch.pop(directive)
        field = directive[len(DELETE_PRIMITIVE):]
        if not field or not isinstance(values, list):
            raise _bad("invalid patch format of primitive list")
        current = original.get(field)
        if isinstance(current, list):
            drop = {_identity(v, "") for v in values}
            original[field] = [x for x in current if _identity(x, "") not in drop]


def _set_element_order(original: dict[str, Any], patch: dict[str, Any], type_name: str | None) -> None:
    for directive in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(directive)
        field = directive[len(SET_ORDER):]
        if not field or not isinstance(order, list):
            raise _bad("invalid patch format of setElementOrder list")
        if field in patch and patch[field] is None:
            continue  # the list itself is deleted; nothing to order
        if field in patch and not isinstance(patch[field], list):
            raise _bad(f"expected a list for {field}, but received a {kind_of(patch[field])}")
        meta = schema.lookup(type_name, field)
        current = original.get(field)
        has_current = isinstance(current, list)
        server: list[Any] = current if isinstance(current, list) else []
        in_patch = field in patch
        if not in_patch and not has_current:
            continue
        patch_list: list[Any] = patch.pop(field, [])
        _validate_order(patch_list, order, meta.merge_key)
        merged = _merge_list(server, patch_list, meta) if in_patch else server
        named_at = _Positions(order, meta.merge_key)
        named = [x for x in merged if named_at(x) >= 0]
        others = [x for x in merged if named_at(x) < 0]
        original[field] = _interleave(named, others, order, server, meta.merge_key)


def _validate_order(patch_list: list[Any], order: list[Any], key: str) -> None:
    """Every element the patch adds or changes is in the order list, in the same relative order."""
    if not patch_list or not order:
        return
    items = [x for x in patch_list if not (isinstance(x, dict) and DIRECTIVE in x)]
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if _same(items[pi], order[oi], key):
            pi += 1
        oi += 1
    if pi < len(items):
        raise _bad(f"The order in patch list:\n{_go(patch_list)}\n doesn't match $setElementOrder list:\n"
                   f"{_go(order)}\n")


def _same(a: Any, b: Any, key: str) -> bool:
    if not key:
        return json_equal(a, b)
    for item in (a, b):
        if not isinstance(item, dict) or key not in item:
            raise _bad(f"map: {_go(item)} does not contain declared merge key: {key}")
    return json_equal(a[key], b[key])


def _hashable(value: Any) -> Hashable:
    """A hashable stand-in equal exactly when the JSON values are equal (so `true` is not `1`)."""
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, Mapping):
        return ("object", frozenset((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(_hashable(v) for v in value))
    return ("null",)


def _identity(item: Any, key: str) -> Hashable | None:
    """What a list element is matched on: its merge key's value (objects) or itself (primitives)."""
    if key:
        if not isinstance(item, dict) or key not in item:
            return None
        item = item[key]
    return _hashable(item)


class _Positions:
    """First position of each element identity in a list; -1 when absent (Go's `index`, in O(1))."""

    def __init__(self, items: list[Any], key: str) -> None:
        self._key = key
        self._at: dict[Hashable, int] = {}
        for i, item in enumerate(items):
            self.add(item, i)

    def add(self, item: Any, position: int) -> None:
        ident = _identity(item, self._key)
        if ident is not None:
            self._at.setdefault(ident, position)

    def __call__(self, item: Any) -> int:
        ident = _identity(item, self._key)
        return -1 if ident is None else self._at.get(ident, -1)


def _element_kind(*lists: list[Any]) -> str:
    kinds = {kind_of(x) for items in lists for x in items}
    if "array" in kinds:
        raise _bad("lists of lists are not supported")
    if len(kinds) > 1:
        raise _bad(f"list element types are not identical: {sorted(kinds)}")
    return kinds.pop() if kinds else "null"


def _merge_list(original: list[Any], patch: list[Any], meta: schema.PatchMeta) -> list[Any]:
    if meta.strategy != schema.MERGE:
        return patch
    if not original and not patch:
        return []
    key = meta.merge_key
    if _element_kind(original, patch) != "object":
        merged: list[Any] = []
        seen: set[Hashable] = set()
        for x in original + patch:
            ident = _identity(x, "")
            if ident not in seen:
                seen.add(ident)
                merged.append(x)
        in_patch_at = _Positions(patch, "")
        in_patch = [x for x in merged if in_patch_at(x) >= 0]
        server_only = [x for x in merged if in_patch_at(x) < 0]
        return _interleave(in_patch, server_only, patch, original, "")
    if not key:
        raise _bad(f"cannot merge lists without merge key for type {meta.type or 'object'}")
    original, rest, replace = _special_elements(original, patch, key)
    if replace:
        return [_merge_map({}, e, meta.type) for e in rest]
    merged = list(original)
    merged_at = _Positions(merged, key)
    for element in rest:
        if key not in element:
            raise _bad(f"map: {_go(element)} does not contain declared merge key: {key}")
        at = merged_at(element)
        if at >= 0:
            merged[at] = _merge_map(merged[at], element, meta.type)
        else:
            merged.append(_merge_map({}, element, meta.type))
            merged_at.add(element, len(merged) - 1)
    rest_at = _Positions(rest, key)
    in_patch = [x for x in merged if rest_at(x) >= 0]
    server_only = [x for x in merged if rest_at(x) < 0]
    return _interleave(in_patch, server_only, rest, original, key)


def _special_elements(original: list[Any], patch: list[Any], key: str) -> tuple[list[Any], list[Any], bool]:
    """Apply `$patch` list elements: deletions to `original`; returns (original, plain elements, replace?)."""
    rest: list[Any] = []
    replace = False
    for element in patch:
        if DIRECTIVE not in element:
            rest.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if key not in element:
                raise _bad(f"map: {_go(element)} does not contain declared merge key: {key}")
            doomed = _identity(element, key)
            original = [o for o in original if _identity(o, key) != doomed]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            if key in element:
                rest.append({k: v for k, v in element.items() if k != DIRECTIVE})
        else:
            raise _bad(f"unknown patch type: {_go(directive)} in map: {_go(element)}")
    return original, rest, replace


def _interleave(from_patch: list[Any], server_only: list[Any], patch_order: list[Any],
                server_order: list[Any], key: str) -> list[Any]:
    """Kubernetes' normalizeElementOrder + mergeSortedSlice.

    Patch elements go in patch order, the server's own in server order; a
    server element goes first only while both are on the server and it came
    first there, so the patch's order wins and new elements lead.
    """
    patch_at, server_at = _Positions(patch_order, key), _Positions(server_order, key)

    def rank(where: _Positions, size: int) -> Callable[[Any], int]:
        return lambda item: (i if (i := where(item)) >= 0 else size)

    right = sorted(from_patch, key=rank(patch_at, len(patch_order)))
    left = sorted(server_only, key=rank(server_at, len(server_order)))
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li, ri = server_at(left[i]), server_at(right[j])
            if 0 <= li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out
