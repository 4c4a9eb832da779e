"""Informers over the real store: list then watch, indexes, handlers added while running, metadata informers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from master.client import InformerFactory
from master.registry.catalog import Catalog, builtin_resources
from master.store.sqlite import SqliteStore


def pod(name: str, node: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": name}, "spec": {"nodeName": node}}


def until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_list_watch_index_and_late_handlers(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    pods = Catalog(builtin_resources()).by_kind("", "Pod")
    assert pods is not None
    store.create(pods.key("default", "a"), pod("a", "n1"))
    stopping = threading.Event()
    factory = InformerFactory(store, stopping)
    inf = factory.informer(pods)
    assert factory.informer(pods) is inf, "one shared informer per type"
    inf.add_indexer("node", lambda p: [p["spec"].get("nodeName", "")])
    seen: list[tuple[str | None, str | None]] = []
    inf.add_handler(lambda old, new: seen.append((old and old["metadata"]["name"], new and new["metadata"]["name"])))
    factory.start()
    try:
        assert factory.wait_synced(5)
        assert seen == [(None, "a")]
        store.create(pods.key("default", "b"), pod("b", "n1"))
        store.update(pods.key("default", "a"), pod("a", "n2"))
        until(lambda: len(seen) == 3)
        assert [p["metadata"]["name"] for p in inf.by_index("node", "n1")] == ["b"]
        assert inf.get("default", "a")["spec"]["nodeName"] == "n2"  # type: ignore[index]
        late: list[str] = []
        inf.add_handler(lambda old, new: late.append(new["metadata"]["name"] if new else "-"))
        assert sorted(late) == ["a", "b"], "a late handler first hears about what is cached"
        store.delete(pods.key("default", "b"))
        until(lambda: late[-1:] == ["-"] and seen[-1] == ("b", None))
        assert inf.by_index("node", "n1") == [] and inf.keys() == ["default/a"]
    finally:
        stopping.set()
        time.sleep(1.2)
        store.close()


# --- metadata informers -----------------------------------------------------------------------
CONFIGMAPS = Catalog(builtin_resources()).by_kind("", "ConfigMap")
assert CONFIGMAPS is not None


def configmap(name: str, payload: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels or {}},
            "data": {"payload": payload}}


class Running:
    """A store and an informer factory whose threads are joined on the way out."""

    def __init__(self, path: Path) -> None:
        self.store = SqliteStore(path / "s.db")
        self.stopping = threading.Event()
        self.factory = InformerFactory(self.store, self.stopping)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.threads += self.factory.start()
        assert self.factory.wait_synced(5)

    def close(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(5)
        assert not any(t.is_alive() for t in self.threads)
        self.store.close()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path)
    try:
        yield r
    finally:
        r.close()


def test_a_metadata_informer_keeps_only_metadata(running: Running) -> None:
    running.store.create(CONFIGMAPS.key("default", "a"), configmap("a", "x" * 512, {"v": "1"}))
    inf = running.factory.metadata_informer(CONFIGMAPS)
    assert inf.metadata_only
    inf.add_indexer("label", lambda o: [o["metadata"].get("labels", {}).get("v", "")])
    seen: list[tuple[Any, Any]] = []
    inf.add_handler(lambda old, new: seen.append((old, new)))
    running.start()
    cached = inf.get("default", "a")
    assert cached is not None and set(cached) == {"apiVersion", "kind", "metadata"}
    assert cached["apiVersion"] == "v1" and cached["kind"] == "ConfigMap"
    assert cached["metadata"]["labels"] == {"v": "1"} and cached["metadata"]["uid"] == "a"
    assert seen == [(None, cached)], "the listing is delivered as projections"

    running.store.update(CONFIGMAPS.key("default", "a"), configmap("a", "y" * 512, {"v": "1"}))  # data only
    running.store.update(CONFIGMAPS.key("default", "a"), configmap("a", "y" * 512, {"v": "2"}))
    until(lambda: len(seen) == 3)
    (old1, new1), (old2, new2) = seen[1], seen[2]
    assert old1 is cached and "data" not in new1, "a data-only change arrives as projections"
    assert old1["metadata"]["resourceVersion"] != new1["metadata"]["resourceVersion"]
    assert old2 is new1 and (old2["metadata"]["labels"], new2["metadata"]["labels"]) == ({"v": "1"}, {"v": "2"})
    assert [o["metadata"]["name"] for o in inf.by_index("label", "2")] == ["a"] and not inf.by_index("label", "1")

    running.store.delete(CONFIGMAPS.key("default", "a"))
    until(lambda: len(seen) == 4)
    last, gone = seen[3]
    assert gone is None and set(last) == {"apiVersion", "kind", "metadata"}, "the last state, projected"
    assert inf.get("default", "a") is None


def test_asking_for_both_before_start_gives_one_full_informer(running: Running) -> None:
    running.store.create(CONFIGMAPS.key("default", "a"), configmap("a", "x"))
    meta_inf = running.factory.metadata_informer(CONFIGMAPS)
    meta_seen: list[Any] = []
    meta_inf.add_handler(lambda old, new: meta_seen.append(new))
    full_inf = running.factory.informer(CONFIGMAPS)
    assert full_inf is meta_inf and not full_inf.metadata_only, "one cache, of full objects"
    assert running.factory.metadata_informer(CONFIGMAPS) is full_inf, "and it stays full"
    running.start()
    assert (full_inf.get("default", "a") or {}).get("data") == {"payload": "x"}
    assert meta_seen[0]["data"] == {"payload": "x"}, "the metadata caller gets the full object too"


def test_a_running_metadata_informer_becomes_full_when_asked(running: Running) -> None:
    running.store.create(CONFIGMAPS.key("default", "a"), configmap("a", "x"))
    meta_inf = running.factory.metadata_informer(CONFIGMAPS)
    meta_seen: list[tuple[Any, Any]] = []
    meta_inf.add_handler(lambda old, new: meta_seen.append((old, new)))
    running.start()
    assert "data" not in (meta_inf.get("default", "a") or {})
    full_inf = running.factory.informer(CONFIGMAPS)  # a controller started late
    assert full_inf is meta_inf and not full_inf.metadata_only
    assert (full_inf.get("default", "a") or {}).get("data") == {"payload": "x"}, "full as soon as it is returned"
    late: list[Any] = []
    full_inf.add_handler(lambda old, new: late.append(new))
    assert [o["data"] for o in late] == [{"payload": "x"}], "a late handler hears of full objects only"
    running.store.update(CONFIGMAPS.key("default", "a"), configmap("a", "z"))
    until(lambda: len(late) == 2)
    assert late[1]["data"] == {"payload": "z"}
    old, new = meta_seen[-1]
    assert new is late[1] and old["metadata"]["resourceVersion"] != new["metadata"]["resourceVersion"]
    assert running.threads[0].is_alive(), "the informer listed again and kept running"
