"""What the SQLite store keeps per object and per accepted write, and its JSON encoding.

Objects live in memory as compact JSON bytes: one encoding for the cache, the ring
of recent changes and the disk log, decoded into a fresh dict on every read so
callers may change what they get without touching the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from master.store.base import Obj
from master.store.log import Row
from master.store.watch import Change


@dataclass(frozen=True, slots=True)
class Entry:
    """A current object: its JSON, the revision of its last write, and the revision
    of its newest live row on disk (0: only in memory)."""

    data: bytes
    revision: int
    disk_revision: int


@dataclass(slots=True)
class Pending:
    """An accepted write on its way through the commit pipeline."""

    change: Change
    entry: Entry | None  # the key's state after it; None: deleted
    row: Row | None  # its log row; None: memory only
    done: bool = False
    error: BaseException | None = None


def decode(data: bytes) -> Obj:
    obj: Obj = json.loads(data)
    return obj


def encode(obj: Obj, revision: int) -> bytes:
    """`obj` as JSON with `metadata.resourceVersion` set; `obj` itself is left alone."""
    metadata = dict(obj.get("metadata") or {})
    metadata["resourceVersion"] = str(revision)
    out = dict(obj)
    out["metadata"] = metadata
    return json.dumps(out, separators=(",", ":")).encode()
