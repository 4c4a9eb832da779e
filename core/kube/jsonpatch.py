"""RFC 6902 JSON Patch (`application/json-patch+json`), with Kubernetes' status codes.

`kubectl patch --type json` sends a list of operations. Like the Kubernetes
API server, a body that is not a list of objects is a 400 (`BadRequest`),
more than 10,000 operations a 413, and every failure while applying (unknown
op, missing member, path that does not exist, failed `test`) a 422
(`Invalid`), worded as the Go json-patch library the API server uses words it.
The input is never modified: a failed patch leaves nothing half-applied.

The work a patch may cause is bounded too: `copy` duplicates a subtree, so 30
operations of a 1.5 kB body could double an object past gigabytes. With
`max_bytes`, the size of everything an operation adds (its value, or the
subtree it copies, as JSON) is added up from the target's own size, and the
patch is refused with a 413 as soon as that passes `max_bytes` — before the
operation that would cross it runs, so the serializing it costs is bounded by
`max_bytes` as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from core import errors
from core.kube._json import copy_json, json_equal

MAX_OPERATIONS = 10_000

_INDEX = re.compile(r"0|[1-9][0-9]*")


class _Failed(Exception):
    """An operation that cannot apply; becomes a 422."""


def parse_pointer(pointer: str) -> list[str]:
    """RFC 6901: "" is the whole document, "/a~1b/0" is ["a/b", "0"]."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _Failed(f"JSON pointer {pointer!r} must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search(r"~(?![01])", token):
            raise _Failed(f"JSON pointer {pointer!r} has an invalid escape (only ~0 and ~1 are allowed)")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def _index(token: str, size: int, *, allow_end: bool) -> int:
    """A list index from a pointer token; `-` (and `size` itself) only where appending is allowed."""
    if allow_end and token == "-":
        return size
    if not _INDEX.fullmatch(token):
        raise _Failed(f"invalid array index {token!r}")
    idx = int(token)
    if idx > size or (idx == size and not allow_end):
        raise _Failed(f"array index {idx} out of bounds")
    return idx


def _child(container: Any, token: str) -> Any:
    if isinstance(container, dict):
        if token not in container:
            raise _Failed("missing value")
        return container[token]
    if isinstance(container, list):
        return container[_index(token, len(container), allow_end=False)]
    raise _Failed("missing value")


def _get(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        doc = _child(doc, token)
    return doc


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True), value)
    else:
        raise _Failed("missing value")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise _Failed("cannot remove the whole document")
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _Failed("missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent), allow_end=False))
    raise _Failed("missing value")


def _replace(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _Failed("missing value")
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(last, len(parent), allow_end=False)] = value
    else:
        raise _Failed("missing value")
    return doc


def _member(op: Mapping[str, Any], name: str, kind: str) -> Any:
    if name not in op:
        raise _Failed(f"{kind} operation missing {name!r}")
    return op[name]


def _pointer(op: Mapping[str, Any], name: str, kind: str) -> tuple[str, list[str]]:
    text = _member(op, name, kind)
    if not isinstance(text, str):
        raise _Failed(f"{kind} operation {name!r} must be a string")
    return text, parse_pointer(text)


def _apply_one(doc: Any, op: Mapping[str, Any]) -> Any:
    kind = op.get("op")
    if kind not in ("add", "remove", "replace", "move", "copy", "test"):
        raise errors.Invalid(message=f"Unexpected kind: {kind}")
    path, tokens = _pointer(op, "path", kind)
    value = copy_json(_member(op, "value", kind)) if kind in ("add", "replace", "test") else None
    source, from_tokens = _pointer(op, "from", kind) if kind in ("move", "copy") else ("", [])

    def missing(what: str, where: str, exc: _Failed) -> errors.Invalid:
        return errors.Invalid(message=f"jsonpatch {kind} operation does not apply: doc is missing {what}: "
                                      f"{where}: {exc}")

    if kind == "test":
        try:
            actual = _get(doc, tokens)
        except _Failed:
            raise errors.Invalid(message=f"testing value {path} failed: test failed") from None
        if not json_equal(actual, value):
            raise errors.Invalid(message=f"testing value {path} failed: test failed")
        return doc
    if kind in ("move", "copy"):
        if kind == "move" and from_tokens != tokens and tokens[:len(from_tokens)] == from_tokens:
            raise errors.Invalid(message=f"jsonpatch move operation does not apply: "
                                         f"cannot move {source} into its own child {path}")
        try:
            if kind == "move" and from_tokens == tokens:
                _get(doc, tokens)
                return doc
            value = _remove(doc, from_tokens) if kind == "move" else copy_json(_get(doc, from_tokens))
        except _Failed as exc:
            raise missing("from path", source, exc) from None
    try:
        if kind == "remove":
            _remove(doc, tokens)
            return doc
        if kind == "replace":
            return _replace(doc, tokens, value)
        return _add(doc, tokens, value)
    except _Failed as exc:
        raise missing("key" if kind == "replace" else "path", path, exc) from None


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _added(doc: Any, op: Mapping[str, Any]) -> int:
    """About how many bytes of JSON `op` adds to `doc` (0 for operations that cannot grow it)."""
    kind = op.get("op")
    if kind in ("add", "replace"):
        return _size(op.get("value"))
    if kind == "copy":
        try:
            return _size(_get(doc, parse_pointer(str(op.get("from")))))
        except _Failed:
            return 0  # the operation fails with its own message
    return 0


def json_patch(target: Any, ops: Any, max_bytes: int | None = None) -> Any:
    """`target` with the RFC 6902 operations applied, as a new value.

    Raises `errors.BadRequest` if `ops` is not a list of objects,
    `errors.RequestEntityTooLarge` past 10,000 operations or when what the operations add would take the
    document past `max_bytes`, and `errors.Invalid` (422) when an operation does not apply.
    """
    if not isinstance(ops, list) or not all(isinstance(op, Mapping) for op in ops):
        raise errors.BadRequest(
            message="json: cannot unmarshal the patch: expected a JSON array of operations"
        )
    if len(ops) > MAX_OPERATIONS:
        raise errors.RequestEntityTooLarge(
            message=f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}"
        )
    doc = copy_json(target)
    size = _size(doc) if max_bytes is not None else 0
    for op in ops:
        if max_bytes is not None:
            size += _added(doc, op)
            if size > max_bytes:
                raise errors.RequestEntityTooLarge(
                    message=f"Request entity too large: the patched object would exceed the limit of {max_bytes}")
        try:
            doc = _apply_one(doc, op)
        except _Failed as exc:  # a malformed member (path, from, value) of the operation itself
            raise errors.Invalid(message=f"jsonpatch {op.get('op')} operation is malformed: {exc}") from None
    return doc
