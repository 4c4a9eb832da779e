"""The `pod-template-hash` of a pod template and the semantic equality it rests on (Deployments, DaemonSets).

A Deployment names its ReplicaSets and labels their pods with the hash of the
template (plus a collision count); a DaemonSet labels its pods with it to tell
updated pods from old ones. Both must agree that a template round-tripped
through a Go client (`creationTimestamp: null`, `resources: {}`) is unchanged.
"""

from __future__ import annotations

import json
from typing import Any

Obj = dict[str, Any]
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def semantic(value: Any) -> Any:
    """`value` without nulls and empty maps or lists: what Kubernetes' semantic equality ignores.

    A client that round-trips a template through Go structs sends `creationTimestamp: null`
    and `resources: {}`; the template is still the same one.
    """
    if isinstance(value, dict):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A short, stable name suffix for a pod template (FNV-1a of its canonical JSON)."""
    data = json.dumps(semantic(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in str(h))
