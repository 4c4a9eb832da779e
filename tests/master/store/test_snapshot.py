"""Snapshot reads: `list_page(..., revision=R)` shows every object as it was at R."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from core import errors
from master.store.sqlite import SqliteStore
from tests.master.store.conftest import obj, rv

P = "/pods/default/"


@pytest.fixture
def store(any_store: Any) -> Any:
    """These tests hold for both backends (SQLite and etcd); SQLite-only ones take `sqlite_store`."""
    return any_store


def names(items: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in items]


def page_through(s: SqliteStore, prefix: str, at: int, limit: int, start: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = s.list_page(prefix, start=start, limit=limit, revision=at)
        assert page.revision == at
        out += page.items
        if not page.remaining:
            return out
        start = P + page.items[-1]["metadata"]["name"] + "\x00"


@pytest.mark.parametrize("ring_events", [4096, 2])  # 2: the changes since the snapshot are read from the log
def test_pages_at_a_revision_ignore_later_creates_updates_and_deletes(db_path: Path, ring_events: int) -> None:
    s = SqliteStore(db_path, ring_events=ring_events)
    try:
        for i in range(6):
            s.create(f"{P}p{i}", obj(f"p{i}", v=0))
        first = s.list_page(P, limit=2)
        at = first.revision
        assert names(first.items) == ["p0", "p1"] and first.remaining == 4
        before = {o["metadata"]["name"]: o for o in s.list(P)[0]}

        s.delete(f"{P}p2")
        s.create(f"{P}p2a", obj("p2a"))  # sorts into the unread part
        s.update(f"{P}p3", obj("p3", v=1))
        s.update(f"{P}p3", obj("p3", v=2))
        s.delete(f"{P}p4")
        s.create(f"{P}p4", obj("p4", v=9))  # re-created: still the old one at `at`
        s.create(f"{P}p0a", obj("p0a"))  # sorts into the part already read

        second = s.list_page(P, start=f"{P}p1\x00", limit=2, revision=at)
        assert names(second.items) == ["p2", "p3"] and second.remaining == 2
        assert second.items == [before["p2"], before["p3"]]
        rest = s.list_page(P, start=f"{P}p3\x00", revision=at)
        assert rest.items == [before["p4"], before["p5"]] and rest.remaining == 0
        assert page_through(s, P, at, 1) == list(before.values())
        # The current state is unaffected.
        assert names(s.list(P)[0]) == ["p0", "p0a", "p1", "p2a", "p3", "p4", "p5"]
    finally:
        s.close()


def test_a_snapshot_page_of_the_current_revision_is_the_current_state(store: SqliteStore) -> None:
    for i in range(3):
        store.create(f"{P}p{i}", obj(f"p{i}"))
    now = store.list_page(P, limit=2)
    assert store.list_page(P, limit=2, revision=now.revision) == now
    assert now.remaining == 1
    with pytest.raises(errors.BadRequest):
        store.list_page(P, revision=now.revision + 1)


def test_compaction_past_the_snapshot_is_gone_and_below_it_is_not(store: SqliteStore) -> None:
    a = store.create(f"{P}a", obj("a"))
    store.create(f"{P}b", obj("b"))
    at = store.revision()
    store.update(f"{P}a", obj("a", v=1))
    store.update(f"{P}b", obj("b", v=1))
    store.compact(at)  # removes nothing the snapshot needs
    assert store.list_page(P, revision=at).items[0] == a
    store.update(f"{P}a", obj("a", v=2))
    store.compact(at + 1)
    with pytest.raises(errors.Gone):
        store.list_page(P, revision=at)


def test_volatile_objects_appear_as_they_were_at_the_snapshot(store: SqliteStore) -> None:
    lease = store.create(f"{P}lease", obj("lease", renew=0), durable=False)
    node = store.create(f"{P}node", obj("node", beat=0))
    node = store.update(f"{P}node", obj("node", beat=1), durable=False)
    store.create(f"{P}short", obj("short"), durable=False)
    at = store.revision()
    store.update(f"{P}lease", obj("lease", renew=1), durable=False)
    store.update(f"{P}node", obj("node", beat=2), durable=False)
    store.update(f"{P}node", obj("node", beat=3, real=True))
    store.delete(f"{P}short")
    store.create(f"{P}zlate", obj("zlate"), durable=False)
    page = store.list_page(P, revision=at)
    assert page.items == [lease, node, {**obj("short"), "metadata": {**obj("short")["metadata"],
                                                                      "resourceVersion": str(at)}}]
    assert all(rv(o) <= at for o in page.items)


def test_volatile_changes_lost_from_the_ring_make_the_snapshot_gone(db_path: Path) -> None:
    s = SqliteStore(db_path, ring_events=2)
    try:
        s.create(f"{P}lease", obj("lease", renew=0), durable=False)
        s.create(f"{P}a", obj("a"))
        s.create(f"{P}z", obj("z"))
        at = s.revision()
        s.update(f"{P}lease", obj("lease", renew=1), durable=False)
        for i in range(3):
            s.update(f"{P}a", obj("a", v=i))
        with pytest.raises(errors.Gone):
            s.list_page(P, revision=at)
        # Pages of keys after the lost change's key can still be read; other prefixes too.
        assert names(s.list_page(P, start=f"{P}lease\x00", revision=at).items) == ["z"]
        assert s.list_page("/nodes/", revision=at).items == []
    finally:
        s.close()


def test_a_durable_write_after_a_volatile_one_gives_the_volatile_state(db_path: Path) -> None:
    s = SqliteStore(db_path, ring_events=2)
    try:
        s.create(f"{P}node", obj("node", beat=0))
        beat = s.update(f"{P}node", obj("node", beat=1), durable=False)
        at = s.revision()
        for i in range(4):  # pushes the heartbeat (at or below the snapshot) out of the ring
            s.update(f"{P}node", obj("node", beat=1, cond=i))
        assert s.list_page(P, revision=at).items == [beat]
    finally:
        s.close()


def test_snapshots_survive_a_restart_of_durable_objects(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create(f"{P}a", obj("a"))
    b = s.create(f"{P}b", obj("b"))
    s.create(f"{P}node", obj("node", beat=0))
    at = s.revision()
    before = s.list(P)[0]
    s.update(f"{P}b", obj("b", v=1))
    s.delete(f"{P}a")
    s.close()
    s = SqliteStore(db_path)
    try:
        assert s.list_page(P, revision=at).items == before
        assert s.list_page(P, start=f"{P}b", limit=1, revision=at).items == [b]
    finally:
        s.close()


def test_a_state_lost_with_a_restart_is_gone_not_mixed(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create(f"{P}node", obj("node", beat=0))
    at = s.revision()
    s.update(f"{P}node", obj("node", beat=1), durable=False)  # forgotten by the restart
    s.update(f"{P}node", obj("node", beat=1, real=True))  # its old_value is the forgotten state
    s.close()
    s = SqliteStore(db_path)
    try:
        with pytest.raises(errors.Gone):
            s.list_page(P, revision=at)
    finally:
        s.close()


def test_remaining_counts_objects_after_the_page_at_the_revision(store: SqliteStore) -> None:
    for i in range(5):
        store.create(f"{P}p{i}", obj(f"p{i}"))
    store.create("/pods/other/x", obj("x", "other"))
    at = store.revision()
    store.create(f"{P}p1a", obj("p1a"))
    store.delete(f"{P}p3")
    page = store.list_page(P, start=f"{P}p1", limit=2, revision=at)
    assert names(page.items) == ["p1", "p2"] and page.remaining == 2
    now = store.list_page(P, start=f"{P}p1", limit=2)  # p1a new, p3 gone
    assert names(now.items) == ["p1", "p1a"] and now.remaining == 2


@pytest.mark.parametrize("seed", range(8))
def test_random_histories_read_back_at_every_revision(db_path: Path, seed: int) -> None:
    """Every revision the store can still read matches a model of the history, whatever mix
    of durable and volatile writes, deletions, ring evictions, compaction and a restart.

    Keys k0-k2 get volatile writes half the time (like Leases and node heartbeats); k3-k9
    only durable ones, so a page from k3 on is always exact unless compacted.
    """
    rnd = random.Random(seed)
    ring = rnd.choice([3, 10, 4096])
    s = SqliteStore(db_path, ring_events=ring, reserve_chunk=5)
    states: dict[int, dict[str, dict[str, Any]]] = {}
    current: dict[str, dict[str, Any]] = {}
    restarted_at = 0
    try:
        for step in range(300):
            n = rnd.randrange(10)
            key = f"{P}k{n}"
            durable = n >= 3 or rnd.random() < 0.5
            roll = rnd.random()
            if step == 100:
                s.close()
                s = SqliteStore(db_path, ring_events=ring, reserve_chunk=5)
                restarted_at = s.revision()
                current = {k: o for k in current if (o := s.get(k)) is not None}  # volatile state reverts
            elif roll < 0.02:
                s.compact(s.revision() - 80)
            elif key in current and roll < 0.25:
                s.delete(key)
                del current[key]
            elif key in current:
                current[key] = s.update(key, obj(key[-2:], v=step), durable=durable)
            else:
                current[key] = s.create(key, obj(key[-2:], v=step), durable=durable)
            states[s.revision()] = dict(current)
        exact = 0
        for at in sorted(states):
            want = [states[at][k] for k in sorted(states[at])]
            limit = rnd.choice([1, 2, 3])
            if at < s.compacted_revision():
                with pytest.raises(errors.Gone):
                    page_through(s, P, at, limit)
                continue
            durable_part = page_through(s, P, at, limit, start=f"{P}k3")
            assert durable_part == [o for o in want if o["metadata"]["name"] >= "k3"], at
            exact += 1
            try:
                got = page_through(s, P, at, limit)
            except errors.Gone:  # a volatile change after `at` left the ring, or the restart lost it
                assert ring < 4096 or at < restarted_at, at
                continue
            assert all(rv(o) <= at for o in got)
            if at >= restarted_at:  # before the restart, volatile states may have reverted
                assert got == want, at
        assert exact >= 50
    finally:
        s.close()
