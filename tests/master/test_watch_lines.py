"""The shared encoding of watch lines: one encoding per change and event type, bounded, never mixed up."""

from __future__ import annotations

import json

import pytest

from master.api import watch
from master.registry.catalog import Catalog, builtin_resources
from master.store.base import Event

CONFIGMAPS = Catalog(builtin_resources()).by_kind("", "ConfigMap")


def change(revision: int, name: str = "a") -> Event:
    obj = {"metadata": {"name": name, "namespace": "default", "resourceVersion": str(revision)}, "data": {"k": "v"}}
    return Event("MODIFIED", f"/configmaps/default/{name}", obj, revision)


def test_watchers_of_one_change_share_one_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[str] = []
    real = watch._line

    def counting(kind: str, obj: dict[str, object]) -> bytes:
        encoded.append(kind)
        return real(kind, obj)

    monkeypatch.setattr(watch, "_line", counting)
    cache = watch.LineCache()
    event = change(7)
    lines = {cache.line(CONFIGMAPS, event, "MODIFIED") for _ in range(200)}
    assert encoded == ["MODIFIED"] and len(lines) == 1
    decoded = json.loads(lines.pop())
    assert decoded["type"] == "MODIFIED"
    assert decoded["object"]["kind"] == "ConfigMap" and decoded["object"]["apiVersion"] == "v1"
    assert decoded["object"]["data"] == {"k": "v"}
    assert "kind" not in event.object  # the store's shared object is left as it was


def test_event_type_and_change_are_part_of_the_key() -> None:
    cache = watch.LineCache()
    event = change(7)
    # A watcher whose selector stops matching sees the same change as DELETED.
    assert json.loads(cache.line(CONFIGMAPS, event, "DELETED"))["type"] == "DELETED"
    assert json.loads(cache.line(CONFIGMAPS, event, "MODIFIED"))["type"] == "MODIFIED"
    other = json.loads(cache.line(CONFIGMAPS, change(8, "b"), "MODIFIED"))
    assert other["object"]["metadata"]["name"] == "b"


def test_the_cache_is_bounded_and_keeps_the_recent_lines() -> None:
    cache = watch.LineCache(size=3)
    for revision in range(10):
        cache.line(CONFIGMAPS, change(revision, f"n{revision}"), "ADDED")
    assert len(cache) == 3
    line = cache.line(CONFIGMAPS, change(9, "n9"), "ADDED")
    assert json.loads(line)["object"]["metadata"]["name"] == "n9"
    assert len(cache) == 3
