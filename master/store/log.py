"""The on-disk half of the SQLite store: an append-only log of writes, like kine's.

Every durable write is one row of `log`, keyed by its revision; the current state
is the newest row of each key unless that row is a deletion. `meta` holds two
numbers that keep revisions increasing across restarts: the compacted revision and
the high-water mark reserved for volatile (memory-only) writes. This module only
speaks SQL; locking, caching and watches live in `sqlite.py` and `watch.py`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    revision      INTEGER PRIMARY KEY,
    key           TEXT    NOT NULL,
    created       INTEGER NOT NULL,
    deleted       INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value         BLOB    NOT NULL,
    old_value     BLOB
);
CREATE INDEX IF NOT EXISTS log_key_revision ON log (key, revision);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

META_COMPACTED = "compacted_revision"
META_RESERVED = "reserved_revision"


@dataclass(frozen=True, slots=True)
class Row:
    """One log row. `value` is the object JSON (for a deletion: its last state,
    stamped with the deletion revision); `old_value` the state it replaced."""

    revision: int
    key: str
    created: bool
    deleted: bool
    prev_revision: int
    value: bytes
    old_value: bytes | None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is fsynced before it returns, so an acknowledged write survives
    # power loss; a Pi has no battery-backed anything.
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LogDB:
    """The SQLite file: one writer connection, used by one thread at a time (the
    store's committer), and one reader connection for replaying old history."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:  # it holds Secrets: owner-only (SQLite gives the -wal/-shm files the same mode)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._w = _connect(path)
        self._w.executescript(SCHEMA)
        if fresh:
            _fsync_dir(path.parent)  # the new file's directory entry must survive power loss too
        self._r = _connect(path)

    # --- opening -------------------------------------------------------------------

    def meta(self, name: str) -> int:
        row = self._w.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def max_revision(self) -> int:
        row = self._w.execute("SELECT MAX(revision) FROM log").fetchone()
        return int(row[0] or 0)

    def current(self) -> list[tuple[str, int, bytes]]:
        """(key, revision, value) of every live key: the newest row per key, unless deleted."""
        return [
            (str(k), int(r), bytes(v))
            for k, r, v in self._w.execute(
                "SELECT l.key, l.revision, l.value FROM log AS l"
                " JOIN (SELECT key, MAX(revision) AS rev FROM log GROUP BY key) AS m"
                " ON l.revision = m.rev WHERE l.deleted = 0 ORDER BY l.key"
            )
        ]

    # --- writing (the committer thread only) -----------------------------------------

    def commit(self, rows: Iterable[Row], meta: dict[str, int]) -> None:
        """Append rows and set meta values in one fsynced transaction (all or nothing)."""
        self._w.execute("BEGIN IMMEDIATE")
        try:
            self._w.executemany(
                "INSERT INTO log (revision, key, created, deleted, prev_revision, value, old_value)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((r.revision, r.key, int(r.created), int(r.deleted), r.prev_revision, r.value,
                  r.old_value) for r in rows),
            )
            self._w.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                meta.items(),
            )
            self._w.execute("COMMIT")
        except BaseException:
            if self._w.in_transaction:
                self._w.execute("ROLLBACK")
            raise

    def compact(self, keep_after: int) -> int:
        """Delete rows at or below `keep_after` that a newer row of the same key
        supersedes, and deletions; record `keep_after`. Returns the rows deleted."""
        self._w.execute("BEGIN IMMEDIATE")
        try:
            self._w.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (META_COMPACTED, keep_after),
            )
            cur = self._w.execute(
                "DELETE FROM log WHERE revision <= ?1 AND (deleted = 1 OR revision <"
                " (SELECT MAX(n.revision) FROM log AS n WHERE n.key = log.key))",
                (keep_after,),
            )
            self._w.execute("COMMIT")
            return int(cur.rowcount)
        except BaseException:
            if self._w.in_transaction:
                self._w.execute("ROLLBACK")
            raise

    # --- reading history (any thread, serialised by the caller) ----------------------

    def history(self, prefix: str, after: int, through: int, limit: int) -> list[Row]:
        """Rows with keys under `prefix` and `after < revision <= through`, oldest first."""
        return [
            Row(int(r), str(k), bool(c), bool(d), int(p), bytes(v), None if o is None else bytes(o))
            for r, k, c, d, p, v, o in self._r.execute(
                "SELECT revision, key, created, deleted, prev_revision, value, old_value FROM log"
                " WHERE revision > ?1 AND revision <= ?2 AND substr(key, 1, ?3) = ?4"
                " ORDER BY revision LIMIT ?5",
                (after, through, len(prefix), prefix, limit),
            )
        ]

    def first_changes(self, prefix: str, start: str, after: int, through: int) -> list[tuple[str, int, bytes | None]]:
        """(key, revision, old_value) of each key's oldest row with `after < revision <= through`,
        for keys under `prefix` from `start` on (a snapshot read at `after` undoes these)."""
        # SQLite takes a bare column from the row holding the MIN(). `+key` keeps the planner
        # on the revision range (the rows since a snapshot), not on the key index.
        return [
            (str(k), int(r), None if o is None else bytes(o))
            for k, r, o in self._r.execute(
                "SELECT key, MIN(revision), old_value FROM log"
                " WHERE revision > ?1 AND revision <= ?2 AND substr(key, 1, ?3) = ?4 AND +key >= ?5"
                " GROUP BY key",
                (after, through, len(prefix), prefix, start),
            )
        ]

    def row_count(self) -> int:
        row = self._r.execute("SELECT COUNT(*) FROM log").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._r.close()
        self._w.close()
