"""Create/get/list/update/delete/mutate semantics and errors of the SQLite store."""

from __future__ import annotations

from typing import Any

import pytest

from core import errors
from master.store.sqlite import SqliteStore
from tests.master.store.conftest import obj, rv


@pytest.fixture
def store(any_store: Any) -> Any:
    """These tests hold for both backends (SQLite and etcd); SQLite-only ones take `sqlite_store`."""
    return any_store


def test_create_stamps_resource_version_and_get_returns_it(store: SqliteStore) -> None:
    before = store.revision()
    created = store.create("/pods/default/a", obj("a", image="nginx"))
    assert rv(created) == before + 1 == store.revision()
    got = store.get("/pods/default/a")
    assert got == created
    assert got is not None and got["spec"] == {"image": "nginx"}


def test_create_does_not_change_the_callers_dict(store: SqliteStore) -> None:
    o = obj("a")
    store.create("/pods/default/a", o)
    assert "resourceVersion" not in o["metadata"]


def test_reads_are_fresh_copies(store: SqliteStore) -> None:
    store.create("/pods/default/a", obj("a", image="nginx"))
    first = store.get("/pods/default/a")
    assert first is not None
    first["spec"]["image"] = "changed"
    first["metadata"]["labels"] = {"x": "y"}
    listed, _ = store.list("/pods/")
    listed[0]["spec"]["image"] = "changed too"
    again = store.get("/pods/default/a")
    assert again is not None and again["spec"]["image"] == "nginx" and "labels" not in again["metadata"]


def test_get_missing_is_none(store: SqliteStore) -> None:
    assert store.get("/pods/default/nope") is None


def test_duplicate_create_raises_already_exists_and_keeps_the_first(store: SqliteStore) -> None:
    store.create("/pods/default/a", obj("a", image="one"))
    rev = store.revision()
    with pytest.raises(errors.AlreadyExists):
        store.create("/pods/default/a", obj("a", image="two"))
    assert store.revision() == rev
    got = store.get("/pods/default/a")
    assert got is not None and got["spec"]["image"] == "one"


def test_update_bumps_revision_and_checks_expected_revision(store: SqliteStore) -> None:
    c = store.create("/pods/default/a", obj("a", image="one"))
    u = store.update("/pods/default/a", obj("a", image="two"), expect_revision=rv(c))
    assert rv(u) > rv(c)
    with pytest.raises(errors.Conflict):
        store.update("/pods/default/a", obj("a", image="three"), expect_revision=rv(c))
    got = store.get("/pods/default/a")
    assert got is not None and got["spec"]["image"] == "two" and rv(got) == rv(u)
    # Without an expected revision, the update is unconditional.
    assert store.update("/pods/default/a", obj("a", image="four"))["spec"]["image"] == "four"


def test_update_and_delete_of_missing_key_raise_not_found(store: SqliteStore) -> None:
    before = store.revision()
    with pytest.raises(errors.NotFound):
        store.update("/pods/default/a", obj("a"))
    with pytest.raises(errors.NotFound):
        store.delete("/pods/default/a")
    assert store.revision() == before


def test_delete_returns_last_state_with_deletion_revision(store: SqliteStore) -> None:
    c = store.create("/pods/default/a", obj("a", image="one"))
    with pytest.raises(errors.Conflict):
        store.delete("/pods/default/a", expect_revision=rv(c) + 100)
    assert store.get("/pods/default/a") is not None
    d = store.delete("/pods/default/a", expect_revision=rv(c))
    assert rv(d) == rv(c) + 1 == store.revision()
    assert d["spec"]["image"] == "one"
    assert store.get("/pods/default/a") is None
    assert store.list("/pods/")[0] == []
    # The key can be created again.
    again = store.create("/pods/default/a", obj("a"))
    assert rv(again) > rv(d)


def test_list_is_key_ordered_prefix_bounded_and_reports_revision(store: SqliteStore) -> None:
    for ns, name in [("b", "z"), ("a", "y"), ("ab", "x"), ("a", "b")]:
        store.create(f"/pods/{ns}/{name}", obj(name, ns))
    store.create("/services/a/b", obj("b", "a"))
    items, rev = store.list("/pods/a/")
    assert [o["metadata"]["name"] for o in items] == ["b", "y"]  # not /pods/ab/x
    assert rev == store.revision()
    items, _ = store.list("/pods/")
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items] == [
        ("a", "b"), ("a", "y"), ("ab", "x"), ("b", "z")]
    assert store.list("/pods/c/")[0] == []
    everything, _ = store.list("")
    assert len(everything) == 5


def test_list_start_and_limit_page_through_keys(store: SqliteStore) -> None:
    for i in range(10):
        store.create(f"/pods/default/p{i}", obj(f"p{i}"))
    store.create("/pods/other/p0", obj("p0", "other"))
    page, _ = store.list("/pods/default/", limit=4)
    assert [o["metadata"]["name"] for o in page] == ["p0", "p1", "p2", "p3"]
    page, _ = store.list("/pods/default/", start="/pods/default/p4", limit=4)
    assert [o["metadata"]["name"] for o in page] == ["p4", "p5", "p6", "p7"]
    page, _ = store.list("/pods/default/", start="/pods/default/p8", limit=4)
    assert [o["metadata"]["name"] for o in page] == ["p8", "p9"]  # stops at the prefix end
    # A start before the prefix starts at the prefix.
    page, _ = store.list("/pods/other/", start="/a", limit=0)
    assert [o["metadata"]["namespace"] for o in page] == ["other"]


def test_mutate_creates_updates_and_deletes(store: SqliteStore) -> None:
    seen: list[Any] = []

    def add_label(cur: dict[str, Any] | None) -> dict[str, Any]:
        seen.append(cur)
        o = cur or obj("a")
        o["metadata"].setdefault("labels", {})["n"] = str(len(seen))
        return o

    old, new = store.mutate("/pods/default/a", add_label)
    assert old is None and new is not None and new["metadata"]["labels"] == {"n": "1"}
    old, new = store.mutate("/pods/default/a", add_label)
    assert old is not None and old["metadata"]["labels"] == {"n": "1"}  # not the copy fn changed
    assert new is not None and new["metadata"]["labels"] == {"n": "2"} and rv(new) > rv(old)
    assert seen[0] is None and seen[1]["metadata"]["labels"] == {"n": "2"}
    old, new = store.mutate("/pods/default/a", lambda cur: None)
    assert new is None and old is not None and rv(old) == store.revision()
    assert store.get("/pods/default/a") is None
    # Deleting what is absent is a no-op that takes no revision.
    rev = store.revision()
    assert store.mutate("/pods/default/a", lambda cur: None) == (None, None)
    assert store.revision() == rev


def test_mutate_that_raises_stores_nothing(sqlite_store: SqliteStore, db_path: Any) -> None:
    store = sqlite_store  # also counts the log's rows
    store.create("/pods/default/a", obj("a", image="one"))
    rev = store.revision()
    rows = store.log_rows()

    def boom(cur: dict[str, Any] | None) -> dict[str, Any]:
        assert cur is not None
        cur["spec"]["image"] = "half-done"
        raise errors.Invalid(message="no")

    with pytest.raises(errors.Invalid):
        store.mutate("/pods/default/a", boom)
    with pytest.raises(errors.Invalid):
        store.mutate("/pods/default/b", lambda cur: boom(obj("b")))
    assert store.revision() == rev and store.log_rows() == rows
    got = store.get("/pods/default/a")
    assert got is not None and got["spec"]["image"] == "one"
    assert store.get("/pods/default/b") is None
    assert store.list("/pods/")[0] == [got]


def test_unserializable_object_takes_no_revision(store: SqliteStore) -> None:
    before = store.revision()
    with pytest.raises(TypeError):
        store.create("/pods/default/a", {"metadata": {"name": "a"}, "spec": {"x": object()}})
    assert store.revision() == before and store.get("/pods/default/a") is None
    assert rv(store.create("/pods/default/a", obj("a"))) == before + 1


def test_writes_after_close_are_refused(db_path: Any) -> None:
    s = SqliteStore(db_path)
    s.close()
    with pytest.raises(errors.ServiceUnavailable):
        s.create("/pods/default/a", obj("a"))
    s.close()  # idempotent
