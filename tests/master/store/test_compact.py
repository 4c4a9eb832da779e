"""Compaction: history at or below a revision is forgotten, current objects are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import errors
from master.store.sqlite import SqliteStore
from tests.master.store.conftest import obj, rv


def test_compaction_drops_superseded_rows_and_keeps_live_ones(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create("/pods/default/a", obj("a"))
    for i in range(5):
        s.update("/pods/default/a", obj("a", i=i))
    s.create("/pods/default/gone", obj("gone"))
    s.delete("/pods/default/gone")
    kept = s.create("/pods/default/b", obj("b"))
    late = s.update("/pods/default/a", obj("a", i=99))
    assert s.log_rows() == 10
    s.compact(rv(kept))
    # Left: b's only row (live, below the mark) and a's row above the mark.
    assert s.log_rows() == 2
    objects = s.list("")
    s.close()
    s = SqliteStore(db_path)
    try:
        assert s.list("") == objects
        assert s.compacted_revision() == rv(kept)
        assert s.get("/pods/default/a") == late
        with pytest.raises(errors.Gone):
            s.watch("/pods/", rv(kept) - 1)
        w = s.watch("/pods/", rv(kept))
        e = w.next(0.1)
        assert e is not None and e.revision == rv(late) and e.type == "MODIFIED"
        assert w.next(0.01) is None
        w.close()
    finally:
        s.close()


def test_compacting_away_the_newest_deletion_does_not_reuse_its_revision(db_path: Path) -> None:
    s = SqliteStore(db_path)
    s.create("/pods/default/a", obj("a"))
    d = s.delete("/pods/default/a")
    s.compact(rv(d))
    assert s.log_rows() == 0
    s.close()
    s = SqliteStore(db_path)
    try:
        assert rv(s.create("/pods/default/b", obj("b"))) == rv(d) + 1
    finally:
        s.close()


def test_compaction_never_passes_the_current_revision_or_goes_back(store: SqliteStore) -> None:
    store.create("/pods/default/a", obj("a"))
    store.update("/pods/default/a", obj("a", x=1))
    store.compact(1000)
    assert store.compacted_revision() == store.revision() == 2
    store.compact(1)
    assert store.compacted_revision() == 2
    assert store.get("/pods/default/a") is not None


def test_compact_older_than_keeps_the_newest_revisions(store: SqliteStore) -> None:
    store.create("/pods/default/a", obj("a"))
    for i in range(29):
        store.update("/pods/default/a", obj("a", i=i))
    assert store.compact_older_than(keep_last_revisions=10) == 20
    assert store.log_rows() == 10
    assert store.compact_older_than(keep_last_revisions=100) == 20  # never goes back
