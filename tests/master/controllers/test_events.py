"""The event recorder: off the caller's thread, and a repeated event counts up instead of piling up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import MasterSettings
from master.client import Client, Recorder
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.listing import ListOptions
from master.registry.verbs import Handlers
from master.store.sqlite import SqliteStore


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(MasterSettings(data_dir=tmp_path), store, Catalog(builtin_resources()))
    handlers = Handlers(ctx)
    handlers.create(ctx.catalog.by_kind("", "Namespace"), "", {"metadata": {"name": "default"}})  # type: ignore[arg-type]
    yield Client(handlers)
    store.close()


def test_repeats_are_counted(client: Client) -> None:
    stopping = threading.Event()
    recorder = Recorder(client, stopping)
    recorder.start()
    pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default", "uid": "u1"}}
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "pi-1", "uid": "u2"}}
    for _ in range(3):
        recorder.event(pod, "Warning", "FailedScheduling", "0/1 nodes are available: 1 Too many pods.",
                       "default-scheduler")
    recorder.event(pod, "Normal", "Scheduled", "Successfully assigned default/web to pi-1", "default-scheduler")
    recorder.event(node, "Normal", "NodeNotReady", "Node pi-1 status is now: NodeNotReady", "node-controller")
    recorder.flush()
    stopping.set()
    events = client.list(client.kinds.events, "default")
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 3
    failed = by_reason["FailedScheduling"]
    assert failed["count"] == 3 and failed["type"] == "Warning"
    assert failed["involvedObject"] == {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1",
                                        "apiVersion": "v1", "resourceVersion": ""}
    assert failed["source"] == {"component": "default-scheduler"}
    assert failed["firstTimestamp"] <= failed["lastTimestamp"]
    assert by_reason["NodeNotReady"]["metadata"]["namespace"] == "default"  # cluster-scoped objects
    assert "namespace" not in by_reason["NodeNotReady"]["involvedObject"]
    assert client.handlers.list(client.kinds.events, "default", ListOptions())["items"]
