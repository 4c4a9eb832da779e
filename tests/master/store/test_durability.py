"""Reopening, revision continuity and volatile (memory-only) writes."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from core import errors
from master.store.sqlite import SqliteStore
from tests.master.store.conftest import obj, rv


def _disk(db_path: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the database file and its WAL: any write changes one."""
    out = []
    for p in (db_path, db_path.with_name(db_path.name + "-wal")):
        if p.exists():
            st = os.stat(p)
            out.append((p.name, st.st_size, st.st_mtime_ns))
    return out


def test_reopened_store_has_the_same_objects_and_continues_revisions(db_path: Path) -> None:
    s = SqliteStore(db_path)
    a = s.create("/pods/default/a", obj("a", image="one"))
    s.create("/pods/default/b", obj("b"))
    s.update("/pods/default/a", obj("a", image="two"))
    s.create("/pods/default/c", obj("c"))
    s.delete("/pods/default/c")
    before_objects, before_rev = s.list("")
    s.close()

    s = SqliteStore(db_path)
    try:
        assert s.list("") == (before_objects, before_rev)
        assert s.get("/pods/default/c") is None
        got = s.get("/pods/default/a")
        assert got is not None and got["spec"]["image"] == "two" and rv(got) > rv(a)
        assert rv(s.create("/pods/default/d", obj("d"))) == before_rev + 1
        # Conflict detection uses the revisions read back from disk.
        with pytest.raises(errors.Conflict):
            s.update("/pods/default/a", obj("a"), expect_revision=rv(a))
        s.update("/pods/default/a", obj("a", image="three"), expect_revision=rv(got))
    finally:
        s.close()


def test_revision_after_deleting_the_newest_key_is_not_reused(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create("/pods/default/a", obj("a"))
    d = s.delete("/pods/default/a")
    s.close()
    s = SqliteStore(db_path)
    try:
        assert rv(s.create("/pods/default/b", obj("b"))) > rv(d)
    finally:
        s.close()


def test_volatile_writes_are_visible_but_never_reach_disk(db_path: Path) -> None:
    s = SqliteStore(db_path)
    try:
        s.create("/pods/default/a", obj("a"))
        # The first volatile write reserves a block of revisions on disk; later ones must not write.
        s.create("/leases/n0", obj("n0"), durable=False)
        rows = s.log_rows()
        disk = _disk(db_path)
        revs = []
        for i in range(200):
            revs.append(rv(s.update("/leases/n0", obj("n0", renew=i), durable=False)))
        s.create("/leases/n1", obj("n1"), durable=False)
        s.delete("/leases/n1")  # exists only in memory: its deletion must not touch the disk either
        s.mutate("/leases/n0", lambda cur: cur, durable=False)
        assert revs == sorted(set(revs))
        got = s.get("/leases/n0")
        assert got is not None and got["spec"]["renew"] == 199
        assert [o["metadata"]["name"] for o in s.list("/leases/")[0]] == ["n0"]
        assert s.log_rows() == rows
        assert _disk(db_path) == disk
    finally:
        s.close()


def test_volatile_objects_are_gone_after_restart_and_revisions_still_increase(db_path: Path) -> None:
    s = SqliteStore(db_path, reserve_chunk=50)
    s.create("/pods/default/a", obj("a"))
    s.create("/leases/n0", obj("n0"), durable=False)
    last = 0
    for i in range(120):  # crosses two reservation blocks
        last = rv(s.update("/leases/n0", obj("n0", renew=i), durable=False))
    s.close()  # an orderly close does not persist volatile objects either
    s = SqliteStore(db_path, reserve_chunk=50)
    try:
        assert s.get("/leases/n0") is None
        assert s.get("/pods/default/a") is not None
        assert s.revision() >= last
        assert rv(s.create("/pods/default/b", obj("b"))) > last
    finally:
        s.close()


def test_volatile_update_of_durable_object_reverts_to_durable_state_after_restart(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create("/nodes/n0", obj("n0", heartbeat=0))
    v = s.update("/nodes/n0", obj("n0", heartbeat=1), durable=False)
    assert s.get("/nodes/n0") == v
    s.close()
    s = SqliteStore(db_path)
    try:
        got = s.get("/nodes/n0")
        assert got is not None and got["spec"]["heartbeat"] == 0
    finally:
        s.close()


def test_durable_write_replaces_volatile_overlay(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create("/leases/n0", obj("n0", renew=1), durable=False)
    s.update("/leases/n0", obj("n0", renew=2), durable=False)
    d = s.update("/leases/n0", obj("n0", renew=3))
    s.close()
    s = SqliteStore(db_path)
    try:
        assert s.get("/leases/n0") == d
    finally:
        s.close()


def test_deleting_a_durable_object_after_a_volatile_update_is_durable(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create("/nodes/n0", obj("n0"))
    s.update("/nodes/n0", obj("n0", heartbeat=1), durable=False)
    old, new = s.mutate("/nodes/n0", lambda cur: None, durable=False)
    assert new is None and old is not None
    s.close()
    s = SqliteStore(db_path)
    try:
        assert s.get("/nodes/n0") is None  # a deleted object never comes back
    finally:
        s.close()


def test_log_rows_follow_kine_model(db_path: Path) -> None:
    s = SqliteStore(db_path)
    a = s.create("/pods/default/a", obj("a"))
    b = s.update("/pods/default/a", obj("a", x=1))
    c = s.delete("/pods/default/a")
    s.close()
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT revision, key, created, deleted, prev_revision FROM log ORDER BY revision").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [
        (rv(a), "/pods/default/a", 1, 0, 0),
        (rv(b), "/pods/default/a", 0, 0, rv(a)),
        (rv(c), "/pods/default/a", 0, 1, rv(b)),
    ]
    assert mode == "wal"


def test_commits_are_fsynced(store: SqliteStore) -> None:
    # synchronous=FULL (2): a WAL commit is fsynced before it returns; power loss keeps it.
    assert store._db._w.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_failed_commit_fails_the_write_and_the_store_recovers(store: SqliteStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    a = store.create("/pods/default/a", obj("a", image="one"))
    real_commit = store._db.commit

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store._db, "commit", broken)
    w = store.watch("/pods/", store.revision())
    with pytest.raises(errors.InternalError):
        store.update("/pods/default/a", obj("a", image="two"))
    with pytest.raises(errors.InternalError):
        store.create("/pods/default/b", obj("b"))
    assert store.get("/pods/default/a") == a and store.get("/pods/default/b") is None
    assert w.next(0.01) is None  # nothing failed was published
    monkeypatch.setattr(store._db, "commit", real_commit)
    # The pending state was rolled back: b can be created, a's revision is unchanged.
    u = store.update("/pods/default/a", obj("a", image="three"), expect_revision=rv(a))
    b = store.create("/pods/default/b", obj("b"))
    assert rv(a) < rv(u) < rv(b)
    e = w.next(1.0)
    assert e is not None and e.object == u
    w.close()


def test_database_files_are_owner_only(store: SqliteStore, db_path: Path) -> None:
    store.create("/secrets/default/s", obj("s"))  # Secrets live in this file
    for p in (db_path, db_path.with_name(db_path.name + "-wal")):
        assert p.stat().st_mode & 0o077 == 0, p
