"""The one event recorder (master and agent): deduplication into counts, fields, and surviving a failing API."""

from __future__ import annotations

import threading
from typing import Any

from core import errors
from core.events import Recorder

Obj = dict[str, Any]
POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                                                       "resourceVersion": "7"}}


class Sink:
    def __init__(self) -> None:
        self.events: dict[str, Obj] = {}
        self.fail_next: Exception | None = None

    def create_event(self, namespace: str, event: Obj) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        self.events[event["metadata"]["name"]] = event

    def bump_event(self, namespace: str, name: str, count: int, last_timestamp: str) -> None:
        if name not in self.events:
            raise errors.NotFound(message=f'events "{name}" not found')
        self.events[name].update(count=count, lastTimestamp=last_timestamp)


def run(recorder: Recorder) -> None:
    threads = recorder.start()
    recorder.flush()
    recorder.stop()
    for t in threads:
        t.join(2)


def test_a_repeat_is_a_count_and_a_field_path_is_another_event() -> None:
    sink = Sink()
    rec = Recorder(sink, component="kubelet", host="pi-1")
    for _ in range(3):
        rec.event(POD, "Warning", "BackOff", "Back-off restarting failed container", field_path="spec.containers{a}")
    rec.event(POD, "Warning", "BackOff", "Back-off restarting failed container", field_path="spec.containers{b}")
    run(rec)
    by_path = {e["involvedObject"]["fieldPath"]: e for e in sink.events.values()}
    assert by_path["spec.containers{a}"]["count"] == 3 and by_path["spec.containers{b}"]["count"] == 1
    event = by_path["spec.containers{a}"]
    assert event["metadata"]["namespace"] == "shop" and event["source"] == {"component": "kubelet", "host": "pi-1"}
    assert event["involvedObject"]["resourceVersion"] == "7" and event["reportingInstance"] == "pi-1"


def test_an_event_deleted_meanwhile_is_created_again() -> None:
    sink = Sink()
    rec = Recorder(sink, component="node-controller")
    threads = rec.start()
    rec.event(POD, "Normal", "Killing", "Stopping container a")
    rec.flush()
    sink.events.clear()  # expired, or deleted by someone
    rec.event(POD, "Normal", "Killing", "Stopping container a")
    rec.flush()
    rec.stop()
    for t in threads:
        t.join(2)
    assert [e["count"] for e in sink.events.values()] == [1]


def test_an_unreachable_api_drops_the_event_and_the_writer_goes_on() -> None:
    class Unreachable(Exception):
        pass

    sink = Sink()
    sink.fail_next = Unreachable("connection refused")
    rec = Recorder(sink, component="kubelet", quiet=(Unreachable,))
    rec.event(POD, "Normal", "Pulled", "first")
    rec.event(POD, "Normal", "Pulled", "second")
    run(rec)
    assert [e["message"] for e in sink.events.values()] == ["second"]


def test_a_full_queue_drops_instead_of_blocking() -> None:
    rec = Recorder(Sink(), threading.Event(), max_queue=2)
    for i in range(5):
        rec.event(POD, "Normal", "Pulled", str(i))  # returns at once although nothing writes
    assert rec._queue.qsize() == 2
