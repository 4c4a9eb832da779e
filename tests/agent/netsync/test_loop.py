"""The network sync loop and the cluster-wide informer, with fakes (no root, no master)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from agent.client import NODES, ConnectionFailed
from agent.informer import Informer
from agent.netsync.loop import SyncLoop
from core import errors


def _run(loop: SyncLoop) -> threading.Thread:
    t = threading.Thread(target=loop.run, daemon=True)
    t.start()
    return t


def test_a_burst_of_kicks_is_one_sync_and_the_first_sync_is_full() -> None:
    calls: list[bool] = []
    loop = SyncLoop(calls.append, debounce=0.2, resync=60)
    t = _run(loop)
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:  # a loaded machine may start the thread late
        time.sleep(0.01)
    assert calls == [True]  # at start: a full sync at once
    for _ in range(20):  # one burst, well inside the debounce window
        loop.kick()
    time.sleep(0.6)
    loop.stop()
    t.join(2)
    assert calls == [True, False]


def test_periodic_full_resync_and_retry_after_a_failure() -> None:
    calls: list[bool] = []
    failed = threading.Event()

    def sync(full: bool) -> None:
        calls.append(full)
        if not failed.is_set():
            failed.set()
            raise RuntimeError("nft said no")

    loop = SyncLoop(sync, debounce=0.0, resync=0.3)
    t = _run(loop)
    time.sleep(1.5)  # failure, 1 s back-off, then the retry (still full), then a resync every 0.3 s
    loop.stop()
    t.join(2)
    assert calls[:2] == [True, True] and len(calls) >= 3 and all(calls)


class FakeApi:
    """list returns a snapshot; watch replays scripted event batches (an exception ends a batch)."""

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[Any]]) -> None:
        self.lists, self.watches = lists, watches
        self.listed = 0

    def list(self, res: Any, namespace: str = "", **params: str) -> dict[str, Any]:
        self.listed += 1
        return self.lists.pop(0)

    def watch(self, res: Any, namespace: str = "", resource_version: str = "", timeout_seconds: int = 300,
              **params: str) -> Iterator[dict[str, Any]]:
        if not self.watches:
            time.sleep(0.05)
            return
        for item in self.watches.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


def obj(name: str, rv: str, ns: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}


def test_informer_lists_watches_and_relists_after_gone() -> None:
    api = FakeApi(
        lists=[{"metadata": {"resourceVersion": "1"}, "items": [obj("a", "1"), obj("b", "1")]},
               {"metadata": {"resourceVersion": "9"}, "items": [obj("c", "9")]}],
        watches=[[{"type": "ADDED", "object": obj("d", "2")}, {"type": "DELETED", "object": obj("a", "3")},
                  {"type": "BOOKMARK", "object": obj("", "4")}, errors.Gone(message="too old")]])
    changes = []
    informer = Informer(api, NODES, lambda: changes.append(sorted(o["metadata"]["name"] for o in informer.items())))
    stop = threading.Event()
    t = threading.Thread(target=informer.run, args=(stop,), daemon=True)
    t.start()
    deadline = time.monotonic() + 3
    while api.listed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    stop.set()
    t.join(2)
    assert informer.synced.is_set()
    assert changes == [["a", "b"], ["a", "b", "d"], ["b", "d"], ["c"]]  # the relist drops what went unseen
    assert informer.get("", "c") is not None and informer.get("", "a") is None


def test_informer_retries_after_the_master_is_unreachable() -> None:
    api = FakeApi(lists=[{"metadata": {"resourceVersion": "1"}, "items": []},
                         {"metadata": {"resourceVersion": "2"}, "items": [obj("x", "2")]}],
                  watches=[[ConnectionFailed("refused")]])
    informer = Informer(api, NODES, lambda: None)
    stop = threading.Event()
    t = threading.Thread(target=informer.run, args=(stop,), daemon=True)
    t.start()
    deadline = time.monotonic() + 3
    while api.listed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(3)
    assert [o["metadata"]["name"] for o in informer.items()] == ["x"]
