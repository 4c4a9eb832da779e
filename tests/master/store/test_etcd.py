"""What only the etcd store has to get right: several masters on one etcd, members that are gone, watches that end.

(The behaviour both backends share runs on both: test_crud.py, test_watch.py, test_snapshot.py.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from core import errors
from master.store.etcd import EtcdStore
from pikube.dev.localmaster import free_port
from tests.master.store.conftest import obj, rv

pytestmark = pytest.mark.integration


@pytest.fixture
def two(etcd_server: Any) -> Iterator[tuple[EtcdStore, EtcdStore]]:
    """Two masters' stores on one etcd."""
    a, b = EtcdStore([etcd_server.client_url]), EtcdStore([etcd_server.client_url])
    yield a, b
    a.close()
    b.close()


def test_two_masters_see_each_others_writes_and_races(two: tuple[EtcdStore, EtcdStore]) -> None:
    a, b = two
    w = b.watch("/pods/", b.revision())
    made = a.create("/pods/default/web", obj("web", n=0))
    assert b.get("/pods/default/web") == made
    event = w.next(5.0)
    assert event is not None and (event.type, event.revision) == ("ADDED", rv(made))
    with pytest.raises(errors.AlreadyExists):
        b.create("/pods/default/web", obj("web"))
    b.update("/pods/default/web", obj("web", n=1), expect_revision=rv(made))
    with pytest.raises(errors.Conflict):  # a's copy is stale now
        a.update("/pods/default/web", obj("web", n=2), expect_revision=rv(made))
    w.close()

    # Read-modify-write from both masters at once: no increment is lost.
    def bump(store: EtcdStore) -> None:
        for _ in range(25):
            store.mutate("/pods/default/web", lambda cur: {**cur, "spec": {"n": cur["spec"]["n"] + 1}}
                         if cur else None)

    threads = [threading.Thread(target=bump, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    final = a.get("/pods/default/web")
    assert final is not None and final["spec"]["n"] == 51


def test_a_dead_member_is_skipped_and_no_member_is_a_clear_error(etcd_server: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    s = EtcdStore([dead, etcd_server.client_url], timeout=3)
    try:
        assert rv(s.create("/pods/default/a", obj("a"))) > 0  # the second endpoint answered
    finally:
        s.close()
    nobody = EtcdStore([dead], timeout=3)
    try:
        with pytest.raises(errors.ServiceUnavailable, match="no etcd member reachable"):
            nobody.get("/pods/default/a")
    finally:
        nobody.close()


def test_a_watch_ends_with_gone_when_etcd_goes_away(etcd_server: Any) -> None:
    s = EtcdStore([etcd_server.client_url], timeout=3)
    try:
        w = s.watch("/pods/", s.revision())
        s.create("/pods/default/a", obj("a"))
        assert w.next(5.0) is not None
        etcd_server.stop()
        with pytest.raises(errors.Gone):
            while w.next(5.0) is not None:
                pass
            raise AssertionError("the watch neither ended nor said Gone")
        w.close()
    finally:
        s.close()


def test_a_page_read_at_a_revision_is_the_same_on_every_master(two: tuple[EtcdStore, EtcdStore]) -> None:
    a, b = two
    for i in range(6):
        a.create(f"/pods/default/p{i}", obj(f"p{i}"))
    first = a.list_page("/pods/", limit=3)
    a.delete("/pods/default/p4")
    a.create("/pods/default/p9", obj("p9"))
    last = first.items[-1]["metadata"]["name"]
    rest = b.list_page("/pods/", start=f"/pods/default/{last}\x00", limit=10, revision=first.revision)
    assert [o["metadata"]["name"] for o in first.items + rest.items] == [f"p{i}" for i in range(6)]
    assert first.remaining == 3 and rest.remaining == 0
    a.compact(a.revision())
    with pytest.raises(errors.Gone):
        b.list_page("/pods/", limit=3, revision=first.revision)
    with pytest.raises(errors.BadRequest):
        b.list_page("/pods/", limit=3, revision=b.revision() + 100)
