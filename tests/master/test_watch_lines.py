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


class _Tracked(dict[str, object]):
    """A stored object a test can hold a weak reference to (plain dicts cannot be)."""


class _ListingStore:
    """Just enough of a store for a watch from resourceVersion 0: a list, then a watcher with no events."""

    def __init__(self, objects: list[_Tracked]) -> None:
        self.objects = objects

    def list(self, prefix: str) -> tuple[list[_Tracked], int]:
        listed, self.objects = self.objects, []  # the watch holds the only references from here on
        return listed, 5

    def watch(self, prefix: str, since: int) -> object:
        class Quiet:
            def next(self, timeout: float) -> None:
                return None

            def close(self) -> None:
                pass
        return Quiet()

    def revision(self) -> int:
        return 5


def test_a_watch_holds_no_listed_object_once_its_initial_events_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    """500 watches each keeping a namespace's list alive cost hundreds of MB and stalled the API when they ended."""
    import threading
    import weakref

    from master.registry.listing import ListOptions, parse_list_options

    objects = [_Tracked(metadata={"name": f"cm-{i}", "namespace": "default", "labels": {"w": "yes" if i < 3 else "no"},
                                  "resourceVersion": "5"}) for i in range(50)]
    refs = [weakref.ref(o) for o in objects]
    monkeypatch.setattr(watch, "TICK", 0.01)  # the stream's first empty chunk comes at once
    store = _ListingStore(objects)
    del objects
    opts: ListOptions = parse_list_options(CONFIGMAPS, {"labelSelector": "w=yes"})
    lines = watch.stream(store, CONFIGMAPS, "default", opts, "0", 60, False,  # type: ignore[arg-type]
                         lambda o: dict(o), threading.Event())
    sent = [next(lines) for _ in range(3)]
    assert [json.loads(line)["object"]["metadata"]["name"] for line in sent] == ["cm-0", "cm-1", "cm-2"]
    assert next(lines) == b""  # the stream is now waiting for events
    assert [r for r in refs if r() is not None] == []
    lines.close()
