"""Watch: ordering, no gaps under concurrent writers, resumes, compaction, slow watchers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from core import errors
from master.store.base import Event, Watcher
from master.store.sqlite import SqliteStore
from tests.master.store.conftest import obj, rv


@pytest.fixture
def store(any_store: Any) -> Any:
    """These tests hold for both backends (SQLite and etcd); SQLite-only ones take `sqlite_store`."""
    return any_store


def drain(w: Watcher, expect: int = 0, timeout: float = 0.05) -> list[Event]:
    """The events `w` has: waiting up to 5 s for each of the first `expect` (etcd delivers a watch that
    catches up from the past in its own rhythm), then `timeout` for any more."""
    out = []
    while (e := w.next(5.0 if len(out) < expect else timeout)) is not None:
        out.append(e)
    return out


def test_events_carry_type_object_prev_and_revision(store: SqliteStore) -> None:
    w = store.watch("/pods/default/", store.revision())
    c = store.create("/pods/default/a", obj("a", image="one"))
    u = store.update("/pods/default/a", obj("a", image="two"))
    d = store.delete("/pods/default/a")
    events = drain(w, 3)
    w.close()
    assert [(e.type, e.key, e.revision) for e in events] == [
        ("ADDED", "/pods/default/a", rv(c)), ("MODIFIED", "/pods/default/a", rv(u)),
        ("DELETED", "/pods/default/a", rv(d))]
    assert events[0].object == c and events[0].prev is None
    assert events[1].object == u and events[1].prev == c
    # DELETED: the last state stamped with the deletion revision; prev: the state before.
    assert events[2].object["spec"]["image"] == "two" and rv(events[2].object) == rv(d)
    assert events[2].prev == u


def test_watch_respects_prefix_boundaries(store: SqliteStore) -> None:
    w = store.watch("/pods/a/", 0)
    store.create("/pods/ab/x", obj("x", "ab"))
    store.create("/pods/a/y", obj("y", "a"))
    store.create("/services/a/y", obj("y", "a"))
    assert [e.key for e in drain(w, 1)] == ["/pods/a/y"]
    w.close()


def test_next_times_out_with_none(store: SqliteStore) -> None:
    w = store.watch("/pods/", store.revision())
    assert w.next(0.01) is None
    store.create("/pods/default/a", obj("a"))
    e = w.next(1.0)
    assert e is not None and e.type == "ADDED"
    w.close()


def test_watch_from_a_past_revision_replays_from_the_ring(store: SqliteStore) -> None:
    revs = [rv(store.create(f"/pods/default/p{i}", obj(f"p{i}"))) for i in range(5)]
    w = store.watch("/pods/", revs[1])
    store.create("/pods/default/p5", obj("p5"))
    events = drain(w, 4)
    w.close()
    assert [e.revision for e in events] == [*revs[2:], revs[-1] + 1]


def test_watch_from_the_future_skips_until_then(store: SqliteStore) -> None:
    start = store.revision()
    w = store.watch("/pods/", start + 2)
    for i in range(4):
        store.create(f"/pods/default/p{i}", obj(f"p{i}"))
    assert [e.revision for e in drain(w, 2)] == [start + 3, start + 4]
    w.close()


def test_no_gaps_or_duplicates_with_concurrent_writers_and_watch_starts(db_path: Path) -> None:
    # A tiny ring forces some watches to replay from the disk log while writes race.
    store = SqliteStore(db_path, ring_events=16)
    writers, per_writer = 4, 60
    start = threading.Barrier(writers + 1)
    written: list[int] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        start.wait()
        for i in range(per_writer):
            key = f"/pods/ns{n % 2}/w{n}-{i % 7}"
            if store.get(key) is None:
                r = rv(store.create(key, obj(key)))
            elif i % 5 == 0:
                r = rv(store.delete(key))
            else:
                r = rv(store.update(key, obj(key, i=i)))
            with lock:
                written.append(r)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    start.wait()
    watchers: list[tuple[int, Watcher]] = []
    for since in (0, 0, 5, 20):  # some start mid-stream from the past, some from "now"
        watchers.append((since, store.watch("/pods/", since)))
        now = store.revision()
        watchers.append((now, store.watch("/pods/", now)))
    for t in threads:
        t.join()
    try:
        assert sorted(written) == list(range(1, writers * per_writer + 1))
        for since, w in watchers:
            got = [e.revision for e in drain(w)]
            assert got == [r for r in range(since + 1, writers * per_writer + 1)], since
        ns0 = store.watch("/pods/ns0/", 0)
        assert all(e.key.startswith("/pods/ns0/") for e in drain(ns0))
    finally:
        for _, w in watchers:
            w.close()
        store.close()


def test_resume_after_reopen_replays_durable_events_from_the_log(db_path: Path) -> None:
    s = SqliteStore(db_path)
    a = s.create("/pods/default/a", obj("a", image="one"))
    u = s.update("/pods/default/a", obj("a", image="two"))
    s.create("/leases/n0", obj("n0"), durable=False)  # not replayed after a restart
    b = s.create("/pods/default/b", obj("b"))
    d = s.delete("/pods/default/a")
    s.close()
    s = SqliteStore(db_path)
    try:
        w = s.watch("", rv(a))
        live = s.create("/pods/default/c", obj("c"))
        events = drain(w)
        w.close()
        assert [(e.type, e.key, e.revision) for e in events] == [
            ("MODIFIED", "/pods/default/a", rv(u)), ("ADDED", "/pods/default/b", rv(b)),
            ("DELETED", "/pods/default/a", rv(d)), ("ADDED", "/pods/default/c", rv(live))]
        assert events[0].prev == a and events[0].object == u
        assert events[2].prev == u and rv(events[2].object) == rv(d)
    finally:
        s.close()


def test_resume_older_than_the_ring_reads_the_log_in_chunks(db_path: Path) -> None:
    s = SqliteStore(db_path, ring_events=10, history_chunk=7)
    try:
        revs = [rv(s.create(f"/pods/default/p{i:03d}", obj(f"p{i}"))) for i in range(50)]
        s.create("/services/default/x", obj("x"))
        revs.append(rv(s.create("/pods/default/z", obj("z"))))
        w = s.watch("/pods/", revs[3])
        assert [e.revision for e in drain(w)] == revs[4:]
        w.close()
    finally:
        s.close()


def test_resume_across_evicted_volatile_changes_is_gone(db_path: Path) -> None:
    s = SqliteStore(db_path, ring_events=5)
    try:
        since = rv(s.create("/pods/default/a", obj("a")))
        s.create("/leases/n0", obj("n0"), durable=False)
        for i in range(10):
            s.create(f"/pods/default/p{i}", obj(f"p{i}"))
        # The lease change left the ring and is not in the log: replaying would skip it.
        with pytest.raises(errors.Gone):
            s.watch("/leases/", since)
        with pytest.raises(errors.Gone):
            s.watch("", since)
        # Other prefixes replay fine from the log.
        w = s.watch("/pods/", since)
        assert len(drain(w)) == 10
        w.close()
    finally:
        s.close()


def test_volatile_changes_are_delivered_live_and_from_the_ring(store: SqliteStore) -> None:
    since = store.revision()
    live = store.watch("/leases/", since)
    c = store.create("/leases/n0", obj("n0"), durable=False)
    u = store.update("/leases/n0", obj("n0", renew=1), durable=False)
    d = store.delete("/leases/n0")
    resumed = store.watch("/leases/", since)
    for w in (live, resumed):
        assert [(e.type, e.revision) for e in drain(w)] == [
            ("ADDED", rv(c)), ("MODIFIED", rv(u)), ("DELETED", rv(d))]
        w.close()


def test_watch_below_compacted_revision_is_gone(store: SqliteStore) -> None:
    c = rv(store.create("/pods/default/a", obj("a")))
    for i in range(9):
        store.update("/pods/default/a", obj("a", i=i))
    store.compact(c + 5)
    assert store.compacted_revision() == c + 5
    with pytest.raises(errors.Gone):
        store.watch("/pods/", c + 4)
    w = store.watch("/pods/", c + 5)
    assert [e.revision for e in drain(w, 4)] == [c + 6, c + 7, c + 8, c + 9]
    w.close()


def test_compaction_during_a_log_replay_ends_it_with_gone(db_path: Path) -> None:
    s = SqliteStore(db_path, ring_events=5, history_chunk=3)
    try:
        s.create("/pods/default/a", obj("a"))
        for i in range(20):
            s.update("/pods/default/a", obj("a", i=i))
        w = s.watch("/pods/", 1)
        first = w.next(0.1)
        assert first is not None and first.revision == 2
        s.compact(15)
        with pytest.raises(errors.Gone):
            for _ in range(30):
                w.next(0.1)
        w.close()
    finally:
        s.close()


def test_slow_watcher_is_dropped_with_gone_without_blocking_writers(db_path: Path) -> None:
    s = SqliteStore(db_path, watch_queue=10)
    try:
        slow = s.watch("/pods/", 0)
        fast = s.watch("/pods/", 0)
        for i in range(25):
            s.create(f"/pods/default/p{i}", obj(f"p{i}"))
            assert fast.next(1.0) is not None
        assert s.revision() == 25
        with pytest.raises(errors.Gone):
            slow.next(0.1)
        assert s.watcher_count() == 1
        fast.close()
        assert s.watcher_count() == 0
    finally:
        s.close()


def test_close_ends_watches_with_gone(db_path: Path) -> None:
    s = SqliteStore(db_path)
    w = s.watch("/pods/", 0)
    got: list[BaseException] = []

    def wait() -> None:
        try:
            w.next(5.0)
        except errors.Gone as exc:
            got.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    s.close()
    t.join(2.0)
    assert not t.is_alive() and len(got) == 1
