"""The default store: API objects in one SQLite file, served from memory.

Reads of the current state never touch SQL: every current object is cached as
serialized JSON and decoded into a fresh dict per read. A page read at an older
revision (a continue token's) undoes the changes made since, from the ring of
recent changes or, once they have left it, from the log.

Writes are checked against the newest state under one writer lock, get the next
global revision, and are handed to a commit pipeline: whichever waiting writer
finds no commit running becomes the committer, appends every queued write to
the log in one fsynced transaction (group commit, so concurrent writers share an
fsync on a slow SD card), then publishes them to the cache, the ring of recent
changes and the watchers, in revision order. A write returns only after it is
published, and a durable one only after fsync.

Volatile writes (`durable=False`) travel the same pipeline but write no row; see
`docs/store.md` for what survives a restart and why revisions never go back.
"""

from __future__ import annotations

import bisect
import builtins
import threading
from collections.abc import Iterator
from pathlib import Path

from core import errors
from master.store.base import EventType, Mutation, Obj, Page, Store, Watcher
from master.store.log import META_COMPACTED, META_RESERVED, LogDB, Row
from master.store.pipeline import Committer
from master.store.records import Entry, Pending, decode, encode
from master.store.watch import Change, Hub, QueueWatcher, Ring


class SqliteStore:
    """A `Store` on one SQLite file. See the module docstring for the design."""

    def __init__(self, path: Path, *, reserve_chunk: int = 10_000, ring_events: int = 4096,
                 ring_bytes: int = 8 << 20, watch_queue: int = 5000, history_chunk: int = 500) -> None:
        self._db = LogDB(path)
        self._describe_path = path
        self._reserve_chunk = reserve_chunk
        self._watch_queue = watch_queue
        self._history_chunk = history_chunk
        reserved = self._db.meta(META_RESERVED)
        compacted = self._db.meta(META_COMPACTED)
        top = max(self._db.max_revision(), reserved, compacted)

        # Committed, published state; readers and watch registration (the state lock).
        self._state_lock = threading.Lock()
        self._objects: dict[str, Entry] = {k: Entry(v, r, r) for k, r, v in self._db.current()}
        self._keys: list[str] = sorted(self._objects)
        self._published = top
        self._compacted = compacted
        self._ring = Ring(top, ring_events, ring_bytes)
        self._hub = Hub()

        # Accepted but unpublished writes; the writer lock.
        self._lock = threading.Lock()
        self._rev = top
        self._pending: dict[str, tuple[Entry | None, int]] = {}
        self._batch: list[Pending] = []
        self._reserved = reserved  # highest revision volatile writes may use once committed
        self._reserved_disk = reserved
        self._closed = False

        self._committer = Committer(self._commit_queued)
        self._read_lock = threading.Lock()  # the history reader connection

    # --- reads --------------------------------------------------------------------

    def revision(self) -> int:
        return self._published

    def compacted_revision(self) -> int:
        return self._compacted

    def get(self, key: str) -> Obj | None:
        entry = self._objects.get(key)
        return None if entry is None else decode(entry.data)

    def list(self, prefix: str, start: str = "", limit: int = 0) -> tuple[list[Obj], int]:
        page = self.list_page(prefix, start, limit)
        return page.items, page.revision

    def list_page(self, prefix: str, start: str = "", limit: int = 0, revision: int = 0) -> Page:
        if revision:
            return self._snapshot_page(prefix, start, limit, revision)
        with self._state_lock:
            keys = self._keys
            i = bisect.bisect_left(keys, max(prefix, start))
            end = _range_end(keys, prefix, i)
            stop = end if limit <= 0 else min(end, i + limit)
            found = [self._objects[k].data for k in keys[i:stop]]
            revision = self._published
        return Page([decode(d) for d in found], revision, end - stop)

    def _snapshot_page(self, prefix: str, start: str, limit: int, at: int) -> Page:
        """The page as it was at revision `at`: each key's state is the one its first
        change after `at` replaced (a change's `prev`, a log row's `old_value`), or its
        current state if it has not changed since. Changes newer than the ring's floor
        come from the ring; older ones are durable (else `Gone`) and come from the log."""
        lo = max(prefix, start)
        disk: dict[str, tuple[int, bytes | None]] = {}
        covered = at  # every change through this revision is in `disk` or the ring
        while True:
            with self._state_lock:
                self._check_snapshot(at)
                ring = self._ring
                if ring.floor > at and ring.lost_volatile(prefix, at, lo):
                    raise errors.Gone(message=f"in-memory changes after revision {at} are no longer kept")
                if ring.floor <= covered:
                    found, total = self._walk_at(prefix, lo, limit, at, disk)
                    break
            # The ring no longer holds every change after `at`: the older ones are in the log.
            through = self._published
            with self._read_lock:
                if self._closed:
                    raise errors.ServiceUnavailable(message="the store is closed")
                rows = self._db.first_changes(prefix, lo, at, through)
            disk = {k: (r, o) for k, r, o in rows}
            covered = through
        items = [decode(d) for d in found]
        for obj in items:
            if int(obj["metadata"]["resourceVersion"]) > at:  # a state lost with a restart's memory
                raise errors.Gone(message=f"the state at revision {at} was kept in memory only")
        return Page(items, at, total - len(items))

    def _check_snapshot(self, at: int) -> None:
        if at < 0 or at > self._published:
            raise errors.BadRequest(message=f"revision {at} is not between 0 and {self._published}")
        if at < self._compacted:
            raise errors.Gone(message=f"revision {at} is older than the compacted revision {self._compacted}")

    def _walk_at(self, prefix: str, lo: str, limit: int, at: int,
                 disk: dict[str, tuple[int, bytes | None]]) -> tuple[builtins.list[bytes], int]:
        """Under the state lock: the JSON of up to `limit` objects from key `lo` on as they
        were at `at`, and how many objects the range held then. `disk` has the first log
        row after `at` of keys that changed before the ring's floor."""
        first = dict(disk)  # key -> (revision, state before) of its first change after `at`
        for change in self._ring.after(prefix, max(at, self._ring.floor)):
            known = first.get(change.key)
            if change.key >= lo and (known is None or change.revision < known[0]):
                first[change.key] = (change.revision, change.prev)
        keys, objects = self._keys, self._objects
        i = bisect.bisect_left(keys, lo)
        end = _range_end(keys, prefix, i)
        total = end - i - sum(1 for k in first if k in objects) \
            + sum(1 for _, prev in first.values() if prev is not None)
        changed = sorted(first)
        found: builtins.list[bytes] = []
        j = 0
        while limit <= 0 or len(found) < limit:
            now = keys[i] if i < end else None
            then = changed[j] if j < len(changed) else None
            if then is None or (now is not None and now < then):
                if now is None:
                    break
                entry = objects[now]
                if entry.revision > at:  # changed after `at` without our knowing how: never expected
                    raise errors.Gone(message=f"the state of {now} at revision {at} is not known")
                found.append(entry.data)
                i += 1
                continue
            if now == then:
                i += 1
            j += 1
            prev = first[then][1]
            if prev is not None:
                found.append(prev)
        return found, total

    # --- writes -------------------------------------------------------------------

    def create(self, key: str, obj: Obj, durable: bool = True) -> Obj:
        with self._lock:
            self._check_open()
            if self._view(key) is not None:
                raise errors.AlreadyExists(message=f"{key} already exists")
            pending = self._accept(key, None, obj, durable)
        self._committer.wait(pending)
        return decode(pending.change.data)

    def update(self, key: str, obj: Obj, expect_revision: int | None = None,
               durable: bool = True) -> Obj:
        with self._lock:
            self._check_open()
            current = self._expect(key, expect_revision)
            pending = self._accept(key, current, obj, durable)
        self._committer.wait(pending)
        return decode(pending.change.data)

    def delete(self, key: str, expect_revision: int | None = None) -> Obj:
        with self._lock:
            self._check_open()
            current = self._expect(key, expect_revision)
            pending = self._accept(key, current, None, True)
        self._committer.wait(pending)
        return decode(pending.change.data)

    def mutate(self, key: str, fn: Mutation, durable: bool = True) -> tuple[Obj | None, Obj | None]:
        """`fn` runs under the writer lock and must not call the store. For a deletion,
        `old` is the last state stamped with the deletion revision (what `delete` returns)."""
        with self._lock:
            self._check_open()
            current = self._view(key)
            new = fn(None if current is None else decode(current.data))
            if new is None and current is None:
                return None, None
            pending = self._accept(key, current, new, durable)
        self._committer.wait(pending)
        if pending.entry is None:
            return decode(pending.change.data), None
        old = None if current is None else decode(current.data)
        return old, decode(pending.change.data)

    def _check_open(self) -> None:
        if self._closed:
            raise errors.ServiceUnavailable(message="the store is closed")

    def _view(self, key: str) -> Entry | None:
        """The newest state of `key`, counting accepted but unpublished writes."""
        pending = self._pending.get(key)
        if pending is not None:
            return pending[0]
        return self._objects.get(key)

    def _expect(self, key: str, expect_revision: int | None) -> Entry:
        current = self._view(key)
        if current is None:
            raise errors.NotFound(message=f"{key} not found")
        if expect_revision is not None and expect_revision != current.revision:
            raise errors.Conflict(
                message=f"{key} is at revision {current.revision}, not {expect_revision}")
        return current

    def _accept(self, key: str, current: Entry | None, obj: Obj | None, durable: bool) -> Pending:
        """Turn a checked write into a pending one (under the writer lock)."""
        revision = self._rev + 1
        row: Row | None = None
        if obj is not None:
            data = encode(obj, revision)  # before taking the revision: it may raise
            if durable:
                row = Row(revision, key, current is None or current.disk_revision == 0, False,
                          0 if current is None else current.disk_revision, data,
                          None if current is None else current.data)
            disk = revision if durable else (0 if current is None else current.disk_revision)
            entry: Entry | None = Entry(data, revision, disk)
            kind: EventType = "ADDED" if current is None else "MODIFIED"
        else:
            assert current is not None
            data = encode(decode(current.data), revision)
            if current.disk_revision:  # a row on disk: the deletion must be on disk too
                row = Row(revision, key, False, True, current.disk_revision, data, current.data)
            entry, kind = None, "DELETED"
        self._rev = revision
        if row is None and revision > self._reserved:
            self._reserved = revision + self._reserve_chunk
        change = Change(revision, kind, key, data, None if current is None else current.data, row is None)
        pending = Pending(change, entry, row)
        self._pending[key] = (entry, revision)
        self._batch.append(pending)
        return pending

    # --- the commit pipeline --------------------------------------------------------

    def _commit_queued(self) -> None:
        """Commit and publish every queued write (the committing thread only)."""
        with self._lock:
            batch, self._batch = self._batch, []
            reserved = self._reserved
        meta = {META_RESERVED: reserved} if reserved != self._reserved_disk else {}
        rows = [p.row for p in batch if p.row is not None]
        try:
            if rows or meta:
                self._db.commit(rows, meta)
        except BaseException as exc:
            self._fail(batch, exc)
            return
        self._reserved_disk = reserved
        try:
            with self._state_lock:
                for p in batch:
                    self._apply(p)
            with self._lock:
                for p in batch:
                    key = p.change.key
                    if self._pending.get(key, (None, -1))[1] == p.change.revision:
                        del self._pending[key]
        finally:
            self._committer.finish(batch)

    def _apply(self, p: Pending) -> None:
        key = p.change.key
        if p.entry is None:
            del self._objects[key]
            del self._keys[bisect.bisect_left(self._keys, key)]
        else:
            if key not in self._objects:
                bisect.insort(self._keys, key)
            self._objects[key] = p.entry
        self._ring.append(p.change)
        self._hub.publish(p.change)
        self._published = p.change.revision

    def _fail(self, batch: builtins.list[Pending], exc: BaseException) -> None:
        """A commit failed: it and every write accepted after it (which may have been
        checked against it) fail; their revisions are skipped, never reused."""
        with self._lock:
            later, self._batch = self._batch, []
            self._pending.clear()
            self._reserved = self._reserved_disk
        err = errors.InternalError(message=f"the store could not commit a write: {exc}")
        err.__cause__ = exc
        self._committer.finish(batch + later, err)

    # --- watch ----------------------------------------------------------------------

    def watch(self, prefix: str, since: int) -> Watcher:
        with self._state_lock:
            if self._closed:
                raise errors.Gone(message="the store is closed")
            if since < self._compacted:
                raise errors.Gone(
                    message=f"revision {since} is older than the compacted revision {self._compacted}")
            ring = self._ring
            replay: Iterator[Change]
            if since >= ring.floor:
                replay = iter(ring.after(prefix, since))
            elif ring.lost_volatile(prefix, since):
                raise errors.Gone(message=f"in-memory changes after revision {since} are no longer kept")
            else:
                replay = self._history(prefix, since, ring.floor, ring.after(prefix, ring.floor))
            watcher = QueueWatcher(prefix, since, replay, self._watch_queue, self._unwatch)
            self._hub.add(watcher)
        return watcher

    def _unwatch(self, watcher: QueueWatcher) -> None:
        with self._state_lock:
            self._hub.remove(watcher)

    def _history(self, prefix: str, since: int, through: int,
                 tail: builtins.list[Change]) -> Iterator[Change]:
        """Log rows under `prefix` in (since, through], then `tail` (from the ring)."""
        position = since
        while position < through:
            with self._read_lock:
                rows = self._db.history(prefix, position, through, self._history_chunk)
            if self._compacted > position:  # compaction may have removed rows we had not read
                raise errors.Gone(message=f"revision {position} was compacted during the watch")
            for row in rows:
                kind: EventType = "ADDED" if row.created else "DELETED" if row.deleted else "MODIFIED"
                prev = None if kind == "ADDED" else row.old_value
                yield Change(row.revision, kind, row.key, row.value, prev, False)
            if len(rows) < self._history_chunk:
                break
            position = rows[-1].revision
        yield from tail

    def watcher_count(self) -> int:
        with self._state_lock:
            return self._hub.count()

    # --- compaction and shutdown ----------------------------------------------------

    def compact(self, keep_after: int) -> None:
        keep_after = min(keep_after, self._published)
        with self._state_lock:
            if keep_after <= self._compacted:
                return
            self._compacted = keep_after  # first: new watches from below it answer Gone
            self._ring.forget_volatile_through(keep_after)
        with self._committer.exclusive():
            self._db.compact(keep_after)

    def compact_older_than(self, keep_last_revisions: int = 10_000) -> int:
        """Compact all but the newest `keep_last_revisions` revisions; returns the
        compacted revision. Meant to be called periodically by the master."""
        self.compact(self.revision() - keep_last_revisions)
        return self._compacted

    def log_rows(self) -> int:
        """How many rows the disk log holds (for tests and metrics)."""
        with self._read_lock:
            return self._db.row_count()

    def describe(self) -> Obj:
        return {"backend": "sqlite", "path": str(self._describe_path), "revision": self.revision(),
                "readOnly": False}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with self._committer.exclusive():
            self._commit_queued()  # anything accepted before the close
            with self._state_lock:
                self._hub.drop_all("the store is closed")
            with self._read_lock:
                self._db.close()


def _range_end(keys: builtins.list[str], prefix: str, lo: int) -> int:
    """The index in sorted `keys` (from `lo` on) past the last key under `prefix`."""
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return len(keys) if not prefix else lo + sum(1 for k in keys[lo:] if k.startswith(prefix))
    return bisect.bisect_left(keys, stem[:-1] + chr(ord(stem[-1]) + 1), lo)


def _conforms(store: SqliteStore) -> Store:  # mypy checks that SqliteStore is a Store
    return store
