"""Reading request bodies: size limit, media types, JSON and YAML, with Kubernetes' messages."""

from __future__ import annotations

import json
from typing import Any

import yaml
from flask import Request

from core import errors

JSON_TYPES = ("application/json", "")
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


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
            return yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise errors.BadRequest(message=f"error converting YAML to JSON: {_one_line(exc)}") from None
    if mtype in JSON_TYPES or mtype in PATCH_TYPES or mtype.endswith("+json"):
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(message=f"couldn't get version/kind; json parse error: {exc}") from None
    raise errors.UnsupportedMediaType(
        message=f'the body of the request was in an unknown format - accepted media types include: '
                f'application/json, application/yaml, {PROTOBUF} (got "{mtype}")')


def decode_object(data: bytes, mtype: str) -> dict[str, Any]:
    obj = decode(data, mtype)
    if not isinstance(obj, dict):
        raise errors.BadRequest(message="the body of the request must be a JSON or YAML object, "
                                        f"not {type(obj).__name__}")
    return obj


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
