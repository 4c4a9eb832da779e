"""Informers over the real store: list then watch, indexes, and handlers added while running."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from master.api.catalog import Catalog, builtin_resources
from master.client import InformerFactory
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
