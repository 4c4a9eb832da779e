"""The network sync loop and the cluster-wide informer, with fakes (no root, no master)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from agent.client import NODES, ConnectionFailed
from agent.informer import Informer
from agent.kubelet.podsource import PodSource
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
    """list returns a snapshot; watch replays scripted event batches (an exception ends a batch).

    Once the script is used up, a watch blocks until the test says `done` (as a quiet watch would).
    """

    def __init__(self, lists: list[dict[str, Any]], watches: list[list[Any]]) -> None:
        self.lists, self.watches = lists, watches
        self.listed = 0
        self.params: list[dict[str, str]] = []
        self.idle = threading.Event()
        self.done = threading.Event()

    def list(self, res: Any, namespace: str = "", **params: str) -> dict[str, Any]:
        self.listed += 1
        self.params.append(params)
        return self.lists.pop(0)

    def watch(self, res: Any, namespace: str = "", resource_version: str = "", timeout_seconds: int = 300,
              **params: str) -> Iterator[dict[str, Any]]:
        self.params.append(params)
        if not self.watches:
            self.idle.set()
            self.done.wait(5)
            return
        for item in self.watches.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


def run_until_idle(informer: Any, api: FakeApi) -> None:
    """Run the informer's loop until the scripted lists and watches are used up, then stop it."""
    stop = threading.Event()
    t = threading.Thread(target=informer.run, args=(stop,), daemon=True)
    t.start()
    assert api.idle.wait(5), "the informer did not reach the end of the script"
    stop.set()
    api.done.set()
    t.join(5)
    assert not t.is_alive()


def obj(name: str, rv: str, ns: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}}


def test_informer_lists_watches_and_relists_after_gone() -> None:
    api = FakeApi(
        lists=[{"metadata": {"resourceVersion": "1"}, "items": [obj("a", "1"), obj("b", "1")]},
               {"metadata": {"resourceVersion": "9"}, "items": [obj("b", "1"), obj("c", "9")]}],
        watches=[[{"type": "ADDED", "object": obj("d", "2")}, {"type": "DELETED", "object": obj("a", "3")},
                  {"type": "BOOKMARK", "object": obj("", "4")}, errors.Gone(message="too old")]])
    changes: list[str] = []
    informer = Informer(api, NODES, changes.append)  # type: ignore[arg-type]
    run_until_idle(informer, api)
    assert informer.synced.is_set()
    # The relist after Gone reports d (gone unseen) and c (new), not b (unchanged).
    assert changes == ["a", "b", "d", "a", "c", "d"]
    assert informer.get("", "c") is not None and informer.get("", "a") is None and informer.get("", "d") is None


def test_pod_source_keys_by_uid_and_asks_for_this_node_only() -> None:
    def pod(name: str, uid: str, rv: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}}

    api = FakeApi(lists=[{"metadata": {"resourceVersion": "1"}, "items": [pod("web", "u1", "1")]}],
                  watches=[[{"type": "DELETED", "object": pod("web", "u1", "2")},
                            {"type": "ADDED", "object": pod("web", "u2", "3")}]])
    changed: list[str] = []
    source = PodSource(api, "pi-1", changed.append)  # type: ignore[arg-type]
    run_until_idle(source, api)
    assert changed == ["u1", "u1", "u2"]  # the same name twice is two pods
    assert source.uids() == {"u2"} and source.find("default", "web") == pod("web", "u2", "3")
    assert all(p == {"fieldSelector": "spec.nodeName=pi-1"} for p in api.params)


def test_informer_retries_after_the_master_is_unreachable() -> None:
    api = FakeApi(lists=[{"metadata": {"resourceVersion": "1"}, "items": []},
                         {"metadata": {"resourceVersion": "2"}, "items": [obj("x", "2")]}],
                  watches=[[ConnectionFailed("refused")]])
    informer = Informer(api, NODES)  # type: ignore[arg-type]
    run_until_idle(informer, api)
    assert [o["metadata"]["name"] for o in informer.items()] == ["x"]
