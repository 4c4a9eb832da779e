"""Reading request bodies: size limit, media types, JSON and YAML, with Kubernetes' messages.

What a body may cost is bounded before and after parsing. The size limit is
applied while reading, before any parser sees a byte. YAML anchors and aliases
make shared references, so a 500-byte "billion laughs" document parses into a
small graph that explodes only when something walks it (validation, JSON
encoding, a deep copy); JSON may nest thousands of levels (RecursionError in
the parser or anything after it) and carry lone UTF-16 surrogates that no
encoder can write back. So every decoded body is walked once, iteratively,
with a budget: at most one value per byte of the body plus `NODE_SLACK` (a
document without aliases cannot exceed that), at most `MAX_DEPTH` levels, and
no string that is not valid Unicode. Kubernetes' Go decoders refuse excessive
aliasing and depth the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import Any

import yaml
from flask import Request

from core import errors

JSON_TYPES = ("application/json", "")
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PATCH_TYPES = {  # in the order kube-apiserver lists them in its 415
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


MAX_DEPTH = 100  # nesting levels of a decoded body (Kubernetes objects use about 20)
NODE_SLACK = 1000  # values a body may decode to beyond one per byte
_SURROGATE = re.compile("[\ud800-\udfff]")
# PyYAML's safe loader; the C one where libyaml is there (the same rules, faster).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# A refused body up to this size is read and thrown away, so the client sees the
# 413 instead of a connection reset in the middle of its upload.
DRAIN_LIMIT = 16 * 1024 * 1024


def read(request: Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        _drain(request, length)
        raise errors.RequestEntityTooLarge(message=f"Request entity too large: limit is {limit}")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        _drain(request, DRAIN_LIMIT)
        raise errors.RequestEntityTooLarge(message=f"Request entity too large: limit is {limit}")
    return bytes(data)


def _drain(request: Request, length: int) -> None:
    left = min(length, DRAIN_LIMIT)
    while left > 0:
        chunk = request.stream.read(min(left, 1 << 16))
        if not chunk:
            return
        left -= len(chunk)


def media_type(request: Request) -> str:
    return (request.mimetype or "").lower()


def decode(data: bytes, mtype: str) -> Any:
    """Parse a create/update body (JSON or YAML)."""
    if not data.strip():
        raise errors.BadRequest(message="the body of the request is empty: an object is required")
    if mtype == PROTOBUF:
        # kubectl >= 1.30 sends its `create` subcommands' objects as Kubernetes protobuf.
        from master.api.protobuf import decode_object as decode_protobuf

        return decode_protobuf(data)
    if mtype in YAML_TYPES or mtype == "application/apply-patch+yaml":
        try:
            value = yaml.load(data, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise errors.BadRequest(message=f"error converting YAML to JSON: {_one_line(exc)}") from None
        except RecursionError:
            raise errors.BadRequest(message="error converting YAML to JSON: the document nests too deeply") from None
        check_tree(value, len(data), "YAML")
        return _as_json(value)
    if mtype in JSON_TYPES or mtype in PATCH_TYPES or mtype.endswith("+json"):
        try:
            value = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(message=f"couldn't get version/kind; json parse error: {exc}") from None
        except RecursionError:
            raise errors.BadRequest(message="couldn't get version/kind; json parse error: exceeded max depth "
                                            f"{MAX_DEPTH}") from None
        check_tree(value, len(data), "JSON")
        return value
    raise errors.UnsupportedMediaType(
        message=f'the body of the request was in an unknown format - accepted media types include: '
                f'application/json, application/yaml, {PROTOBUF}')  # Kubernetes' words: clients compare them


def decode_object(data: bytes, mtype: str) -> dict[str, Any]:
    obj = decode(data, mtype)
    if not isinstance(obj, dict):
        raise errors.BadRequest(message="the body of the request must be a JSON or YAML object, "
                                        f"not {type(obj).__name__}")
    return obj


def check_tree(value: Any, size: int, what: str) -> None:
    """Refuse a decoded body deeper than `MAX_DEPTH`, with more values than its `size` in bytes allows
    (aliases), or with strings that are not valid Unicode; one iterative walk with a budget, so a
    bomb costs at most that budget."""
    budget = size + NODE_SLACK
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise errors.BadRequest(message=f"error decoding {what}: the document expands to too many values "
                                            "(excessive aliasing)")
        if depth > MAX_DEPTH:
            raise errors.BadRequest(message=f"error decoding {what}: exceeded max depth {MAX_DEPTH}")
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(k, str) and not k.isascii() and _SURROGATE.search(k):
                    raise _not_unicode(what)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str) and not node.isascii() and _SURROGATE.search(node):
            raise _not_unicode(what)


def _as_json(node: Any) -> Any:
    """A YAML document as JSON has it, the way Kubernetes' YAML-to-JSON conversion makes it: timestamps as
    RFC 3339 strings, `!!binary` as base64, keys as strings. Called after `check_tree`, so its depth and size
    are bounded."""
    if isinstance(node, dict):
        return {_key(k): _as_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_json(v) for v in node]
    if isinstance(node, dt.datetime):
        when = node if node.tzinfo else node.replace(tzinfo=dt.UTC)
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(node, dt.date):
        return f"{node.isoformat()}T00:00:00Z"
    if isinstance(node, bytes):
        return base64.b64encode(node).decode()
    if isinstance(node, set):  # !!set
        return {_key(k): None for k in node}
    return node


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return key if isinstance(key, str) else str(_as_json(key))


def _not_unicode(what: str) -> errors.BadRequest:
    return errors.BadRequest(message=f"error decoding {what}: a string is not valid Unicode "
                                     "(a lone UTF-16 surrogate)")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
