"""Recording Events (what `kubectl describe` shows), written once for the master's controllers and the agent's kubelet.

Like client-go's recorder and the kubelet's event correlator: `event()` never
blocks its caller (events go into a bounded queue, dropped when it is full, as
they are when the API cannot be reached), a few writer threads store them, and
an event repeating an earlier one (same object, field, type, reason, message
and source) bumps that event's `count` and `lastTimestamp` instead of adding
another, so a pod retried a hundred times shows one line `(x100 over 5m)`.

Where events are written is the caller's: the master hands an `EventSink` over
its in-process client, the agent one over its HTTPS client.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from core import errors
from core.kube.timefmt import rfc3339

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"


class EventSink(Protocol):
    def create_event(self, namespace: str, event: Obj) -> None: ...

    def bump_event(self, namespace: str, name: str, count: int, last_timestamp: str) -> None:
        """Set an existing event's `count` and `lastTimestamp`; raises `core.errors.NotFound` if it is gone."""
        ...


@dataclass(frozen=True)
class _Pending:
    involved: Obj
    namespace: str
    type: str
    reason: str
    message: str
    component: str
    at: str


class Recorder:
    """Events about objects, from one `component` by default (`kubelet`, or per call in the master)."""

    def __init__(self, sink: EventSink, stopping: threading.Event | None = None, *, component: str = "",
                 host: str = "", writers: int = 1, max_queue: int = 10000, remembered: int = 4096,
                 quiet: tuple[type[Exception], ...] = (), drops_log_level: int = logging.WARNING) -> None:
        self._sink = sink
        self._stopping = stopping or threading.Event()
        self._component = component
        self._host = host
        self._writers = writers
        self._remembered = remembered
        self._drops_log_level = drops_log_level  # the agent drops quietly while the master is away
        # Errors expected while the API is away: logged at debug level, never as tracebacks.
        self._quiet: tuple[type[Exception], ...] = (errors.ApiError, *quiet)
        self._queue: queue.Queue[_Pending] = queue.Queue(max_queue)
        self._lock = threading.Lock()
        # dedup key -> (event name, count, firstTimestamp)
        self._seen: OrderedDict[tuple[str, ...], tuple[str, int, str]] = OrderedDict()
        # Per dedup key, so two writers never create the same event twice.
        self._key_locks: dict[tuple[str, ...], threading.Lock] = {}

    def event(self, obj: Obj, type_: str, reason: str, message: str, component: str = "",
              field_path: str = "") -> None:
        """Record an event about `obj` (Normal or Warning); never blocks."""
        m = obj.get("metadata") or {}
        involved = {"kind": obj.get("kind", ""), "namespace": m.get("namespace", ""), "name": m.get("name", ""),
                    "uid": m.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
                    "resourceVersion": m.get("resourceVersion", "")}
        if not involved["namespace"]:
            del involved["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        pending = _Pending(involved, m.get("namespace") or "default", type_, reason, message,
                           component or self._component, rfc3339())
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            log.log(self._drops_log_level, "event queue full; dropped %s %s for %s", reason, message, m.get("name"))

    def start(self) -> list[threading.Thread]:
        threads = []
        for i in range(self._writers):
            t = threading.Thread(target=self._run, name=f"events-{i}", daemon=True)
            t.start()
            threads.append(t)
        return threads

    def stop(self) -> None:
        self._stopping.set()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued events are written (tests)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                p = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._write(p)
            except self._quiet as exc:
                log.debug("event %s not written: %s", p.reason, exc)
            except Exception:
                log.exception("event %s not written", p.reason)
            finally:
                self._queue.task_done()

    def _write(self, p: _Pending) -> None:
        inv = p.involved
        key = (p.namespace, inv["kind"], inv["name"], inv["uid"], inv.get("fieldPath", ""), p.type, p.reason,
               p.message, p.component)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            self._write_locked(key, p)
        with self._lock:
            if len(self._key_locks) > 2 * self._remembered:
                self._key_locks = {k: v for k, v in self._key_locks.items() if k in self._seen}

    def _write_locked(self, key: tuple[str, ...], p: _Pending) -> None:
        with self._lock:
            seen = self._seen.get(key)
        if seen is not None:
            name, count, first = seen
            try:
                self._sink.bump_event(p.namespace, name, count + 1, p.at)
                self._remember(key, (name, count + 1, first))
                return
            except errors.NotFound:
                pass
        name = f"{p.involved['name']}.{time.time_ns():x}"
        source = {"component": p.component, "host": self._host} if self._host else {"component": p.component}
        self._sink.create_event(p.namespace, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": p.namespace},
            "involvedObject": p.involved, "reason": p.reason, "message": p.message, "type": p.type,
            "source": source, "firstTimestamp": p.at, "lastTimestamp": p.at, "count": 1,
            "eventTime": None, "reportingComponent": p.component, "reportingInstance": self._host,
        })
        self._remember(key, (name, 1, p.at))

    def _remember(self, key: tuple[str, ...], value: tuple[str, int, str]) -> None:
        with self._lock:
            self._seen[key] = value
            self._seen.move_to_end(key)
            while len(self._seen) > self._remembered:
                self._seen.popitem(last=False)
