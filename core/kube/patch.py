"""The three PATCH body formats the API server accepts, behind one import.

- `application/merge-patch+json`: `json_merge_patch` (RFC 7386), below.
- `application/json-patch+json`: `json_patch` (RFC 6902), in `jsonpatch`.
- `application/strategic-merge-patch+json`: `strategic_merge_patch`, in
  `strategic`, driven by the type table in `schema`.

All three return a new value and leave their inputs untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.kube._json import copy_json
from core.kube.jsonpatch import json_patch
from core.kube.strategic import strategic_merge_patch

__all__ = ["json_merge_patch", "json_patch", "strategic_merge_patch"]


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes a member, anything else replaces.

    Never fails: every JSON value is a valid merge patch.
    """
    if not isinstance(patch, Mapping):
        return copy_json(patch)
    base: Mapping[str, Any] = target if isinstance(target, Mapping) else {}
    result: dict[str, Any] = {}
    for key, value in base.items():  # keeps the target's key order
        if key not in patch:
            result[key] = copy_json(value)
        elif patch[key] is not None:
            result[key] = json_merge_patch(value, patch[key])
    for key, value in patch.items():
        if key not in base and value is not None:
            result[key] = json_merge_patch(None, value)
    return result
