"""JSON value helpers the patch modules share: deep copy and JSON (not Python) equality.

Python says `True == 1` and `1 == 1.0`; JSON and Go say the first is false and
the second true. Patches compare values (the `test` op, merge keys, primitive
lists), so they need the JSON rule, and they copy their inputs so that a
failed patch never leaves a half-applied object behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (dicts and lists are copied, scalars shared)."""
    if isinstance(value, Mapping):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [copy_json(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as JSON: booleans never equal numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and bool(a == b)


def kind_of(value: Any) -> str:
    """The JSON type name of a value: object, array, string, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__
