"""The status page over an in-memory `Source`: no master, no store, no catalog, only the three reads `web` declares.

This is what keeps `web` a part of its own: the page, its summary and its live
feed run against a dict, and a watch the source drops (Gone) is restarted and
counts as a change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import errors
from core.settings import MasterSettings
from web import summary
from web.app import create_web_app
from web.feed import ChangeFeed

Obj = dict[str, Any]
PREFIXES = {plural: f"/mem/{plural}/" for _, _, plural in summary.KINDS}


@dataclass
class Change:
    revision: int


class MemoryWatch:
    def __init__(self, source: MemorySource, prefix: str, since: int) -> None:
        self.source, self.prefix, self.since = source, prefix, since

    def next(self, timeout: float) -> Change | None:
        with self.source.cond:
            def pending() -> int | None:
                if self.since < self.source.dropped_below:
                    raise errors.Gone("too old")
                later = [r for r, p in self.source.log if p == self.prefix and r > self.since]
                return later[0] if later else None
            self.source.cond.wait_for(lambda: pending() is not None, timeout)
            rev = pending()
            if rev is None:
                return None
            self.since = rev
            return Change(rev)

    def close(self) -> None:
        pass


class MemorySource:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.objects: dict[str, list[Obj]] = {p: [] for p in PREFIXES.values()}
        self.log: list[tuple[int, str]] = []
        self.rev = 1
        self.dropped_below = 0
        self.watches = 0

    def revision(self) -> int:
        return self.rev

    def list(self, prefix: str) -> tuple[list[Obj], int]:
        with self.cond:
            return list(self.objects.get(prefix, [])), self.rev

    def watch(self, prefix: str, since: int) -> MemoryWatch:
        with self.cond:
            self.watches += 1
            return MemoryWatch(self, prefix, since)

    def add(self, plural: str, obj: Obj) -> None:
        with self.cond:
            self.rev += 1
            self.objects[PREFIXES[plural]].append(obj)
            self.log.append((self.rev, PREFIXES[plural]))
            self.cond.notify_all()

    def drop_watches(self) -> None:
        """Every open watch is now too old, as a store does to a watcher that fell behind."""
        with self.cond:
            self.rev += 1
            self.dropped_below = self.rev
            self.cond.notify_all()


def node(name: str) -> Obj:
    return {"kind": "Node", "metadata": {"name": name, "labels": {}}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}],
                       "allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"}}}


def pod(name: str, on: str) -> Obj:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": on, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5",
                       "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                              "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}]}}


def test_the_page_serves_a_summary_of_what_the_source_holds() -> None:
    source, stopping = MemorySource(), threading.Event()
    source.add("nodes", node("pi-1"))
    source.add("pods", pod("web-1", "pi-1"))
    try:
        client = create_web_app(MasterSettings(data_dir=Path("/nonexistent")), source, PREFIXES, stopping).test_client()
        body = client.get("/api/summary").json
    finally:
        stopping.set()
    assert body is not None
    assert [b["name"] for b in body["boards"]] == ["pi-1"]
    assert [p["name"] for g in body["podsByBoard"] for p in g["pods"]] == ["web-1"]
    assert body["totals"]["podsRunning"] == 1


def test_a_missing_kind_is_a_wiring_error_at_start() -> None:
    partial = {k: v for k, v in PREFIXES.items() if k != "pods"}
    try:
        create_web_app(MasterSettings(data_dir=Path("/nonexistent")), MemorySource(), partial, threading.Event())
    except LookupError as exc:
        assert "pods" in str(exc)
    else:
        raise AssertionError("a prefix table without pods was accepted")


def test_the_feed_moves_on_a_change_and_on_a_dropped_watch() -> None:
    source, stopping = MemorySource(), threading.Event()
    feed = ChangeFeed(source, PREFIXES.values(), stopping)
    try:
        feed.ensure_started()
        start = feed.generation
        source.add("pods", pod("web-1", "pi-1"))
        after_change = feed.wait_beyond(start, 10)
        assert after_change != start
        watches = source.watches
        source.drop_watches()
        after_drop = feed.wait_beyond(after_change, 10)
        assert after_drop != after_change  # a dropped watch may have missed something: viewers rebuild
        with source.cond:
            assert source.cond.wait_for(lambda: source.watches > watches, 10)  # and it watches again
    finally:
        stopping.set()
        feed.wake()
        feed.join(3)
