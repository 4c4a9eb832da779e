"""`metadata.managedFields` as data: its entries, their wire form, and how a list of them is kept.

The bookkeeping of who owns what (`fieldmanager`) works on `Entry` objects with
decoded field sets; this module turns the stored list into entries and back,
the way apimachinery's `internal/managedfields.go` and `capmanagers.go` do:
entries sorted by operation, time, manager, apiVersion and subresource, empty
ones dropped, Update entries capped at 10 by folding the oldest into
`ancient-changes`, and a list that says what the stored one says kept as it
was stored (so a write that changes nothing stays a no-op).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from core.kube import fieldpath
from core.kube.fieldpath import FieldSet

Obj = dict[str, Any]
APPLY, UPDATE = "Apply", "Update"


class Entry:
    """One `managedFields` entry. Its field set is decoded only when asked for (most writes touch few
    entries: the others are tested against the changed paths on their FieldsV1 tree and written back as
    they were stored, without a decode or an encode)."""

    __slots__ = ("_fields", "_tree", "api_version", "manager", "operation", "raw", "subresource", "time")

    def __init__(self, manager: str, operation: str, api_version: str, time: str | None = None,
                 subresource: str = "", fields: FieldSet | None = None, tree: Obj | None = None,
                 raw: Obj | None = None) -> None:
        self.manager, self.operation, self.api_version = manager, operation, api_version
        self.time, self.subresource = time, subresource
        self._fields = fields if fields is not None or tree is not None else set()
        self._tree = tree
        self.raw = raw  # the stored entry while this one says the same

    @property
    def fields(self) -> FieldSet:
        if self._fields is None:
            self._fields = fieldpath.from_fields_v1(self._tree or {}, check=False)
        return self._fields

    @fields.setter
    def fields(self, value: FieldSet) -> None:
        self._fields, self._tree, self.raw = value, None, None

    def __bool__(self) -> bool:
        """Whether the entry owns anything (an empty one is dropped)."""
        return bool(self._fields) if self._fields is not None else bool(self._tree)

    def touches(self, paths: FieldSet) -> bool:
        if not paths:
            return False
        if self._fields is not None:
            return not self._fields.isdisjoint(paths)
        tree = self._tree or {}
        return any(fieldpath.tree_has(tree, p) for p in paths)

    def drop(self, paths: FieldSet) -> None:
        """Give up `paths` (a no-op, keeping the stored form, when it owns none of them)."""
        if self.touches(paths):
            self.fields = self.fields - paths

    def ident(self) -> tuple[str, str, str, str]:
        """What makes two entries the same owner (apimachinery's `BuildManagerIdentifier`)."""
        return (self.manager, self.operation, "" if self.operation == APPLY else self.api_version,
                self.subresource)

    def describe(self) -> str:
        """The owner as Kubernetes' conflict message names it (`printManager`; no time: the
        identifier it prints from carries none)."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def encode(self) -> Obj:
        raw = self.raw
        if raw is not None and raw.get("time") == self.time and raw.get("apiVersion") == self.api_version:
            return raw
        out: Obj = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self._tree if self._fields is None else fieldpath.to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def decode(raw: Any, stored: bool = False) -> list[Entry]:
    """Entries of a `managedFields` list; ValueError for anything Kubernetes would not decode. `stored`:
    the list was written by this server, so field sets are decoded lazily and not checked again."""
    if not isinstance(raw, list):
        raise ValueError("managedFields must be a list")
    out: list[Entry] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"managed fields entry {i} is not an object")
        operation = item.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = item.get("apiVersion")
        if not isinstance(api_version, str) or not api_version:
            raise ValueError("apiVersion must not be empty")
        if item.get("fieldsType") != "FieldsV1":
            raise ValueError(f"invalid fieldsType in managed fields entry {i}")
        manager, subresource, when = item.get("manager", ""), item.get("subresource", ""), item.get("time")
        if not isinstance(manager, str) or not isinstance(subresource, str) or \
                not isinstance(when, str | None):
            raise ValueError(f"invalid managed fields entry {i}")
        tree = item.get("fieldsV1") or {}
        if stored and isinstance(tree, dict):
            out.append(Entry(manager, operation, api_version, when, subresource, tree=tree, raw=item))
        else:
            # A client's entry is written anew, in the canonical form (as Kubernetes re-encodes it).
            out.append(Entry(manager, operation, api_version, when, subresource, fieldpath.from_fields_v1(tree)))
    return out


def encode(entries: Iterable[Entry]) -> list[Obj]:
    """Entries in Kubernetes' order: operation, time, manager, apiVersion, subresource."""
    def order(e: Entry) -> tuple[str, str, str, str, str]:
        return e.operation, e.time or "", e.manager, e.api_version, e.subresource
    return [e.encode() for e in sorted(entries, key=order) if e]


def live_entries(obj: Obj) -> list[Entry]:
    try:
        return decode((obj.get("metadata") or {}).get("managedFields") or [], stored=True)
    except ValueError:
        return []


def is_reset(raw: Any) -> bool:
    return isinstance(raw, list) and (raw == [] or raw == [{}])


MAX_UPDATE_MANAGERS = 10


ANCIENT = "ancient-changes"


def cap_updates(entries: list[Entry]) -> list[Entry]:
    """At most `MAX_UPDATE_MANAGERS` Update entries: the oldest are folded, per apiVersion, into an
    `ancient-changes` entry (apimachinery's `capmanagers.go`), so many writers cannot grow an object."""
    updaters = [e for e in entries if e.operation == UPDATE and e]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return entries
    updaters.sort(key=lambda e: (e.time or "", json.dumps(e.ident())))
    first_of_version: dict[str, Entry] = {}
    buckets: dict[str, Entry] = {}
    gone: set[int] = set()
    length = len(updaters)
    for e in updaters:
        if length <= MAX_UPDATE_MANAGERS:
            break
        first = first_of_version.get(e.api_version)
        if first is None:
            first_of_version[e.api_version] = e
            continue
        bucket = buckets.get(e.api_version)
        if bucket is None:
            bucket = Entry(ANCIENT, UPDATE, e.api_version, first.time, "", set(first.fields))
            buckets[e.api_version] = bucket
            gone.add(id(first))
        bucket.fields |= e.fields
        bucket.time = e.time
        gone.add(id(e))
        length -= 1
    kept = [e for e in entries if id(e) not in gone]
    for bucket in buckets.values():  # an existing ancient-changes entry of that version takes the fold
        same = next((e for e in kept if e.ident() == bucket.ident()), None)
        if same is not None:
            same.fields |= bucket.fields
            same.time = bucket.time
        else:
            kept.append(bucket)
    return kept


def store_entries(meta: Obj, entries: list[Entry], previous: Any) -> None:
    """Set `meta.managedFields` to `entries`: entries that did not change are written back as they were
    stored, and the previous list itself when nothing changed, so such a write stays a no-op."""
    encoded = encode(entries)
    if previous is not None and encoded == previous:
        encoded = previous
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


def decoded_or(raw: Any, fallback: list[Entry]) -> list[Entry]:
    try:
        return decode(raw)
    except ValueError:
        return fallback


def without_managed(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if isinstance(m, dict) and "managedFields" in m:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in m.items() if k != "managedFields"}
    return obj
