"""Events for what `kubectl describe` shows, written off the controllers' hot path and deduplicated.

Like client-go's recorder, `event()` never blocks a controller: events go into a
bounded queue (dropped when it is full) and a few writer threads store them.
An event repeating an earlier one (same object, type, reason, message and
source) bumps that event's `count` and `lastTimestamp` instead of adding
another, so a pod retried a hundred times shows one line `(x100 over 5m)`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from core import errors
from core.kube.timefmt import rfc3339
from master.client.client import Client

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_MAX_REMEMBERED = 4096


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
    def __init__(self, client: Client, stopping: threading.Event, writers: int = 1,
                 max_queue: int = 10000) -> None:
        self._client = client
        self._stopping = stopping
        self._queue: queue.Queue[_Pending] = queue.Queue(max_queue)
        self._writers = writers
        self._lock = threading.Lock()
        # dedup key -> (event name, count, firstTimestamp)
        self._seen: OrderedDict[tuple[str, ...], tuple[str, int, str]] = OrderedDict()
        # Per dedup key, so two writers never create the same event twice.
        self._key_locks: dict[tuple[str, ...], threading.Lock] = {}

    def event(self, obj: Obj, type_: str, reason: str, message: str, component: str) -> None:
        """Record an event about `obj` (Normal or Warning); never blocks."""
        m = obj.get("metadata") or {}
        involved = {"kind": obj.get("kind", ""), "namespace": m.get("namespace", ""), "name": m.get("name", ""),
                    "uid": m.get("uid", ""), "apiVersion": obj.get("apiVersion", ""),
                    "resourceVersion": m.get("resourceVersion", "")}
        if not involved["namespace"]:
            del involved["namespace"]
        pending = _Pending(involved, m.get("namespace") or "default", type_, reason, message, component,
                           rfc3339())
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            log.warning("event queue full; dropped %s %s for %s", reason, message, m.get("name"))

    def start(self) -> list[threading.Thread]:
        threads = []
        for i in range(self._writers):
            t = threading.Thread(target=self._run, name=f"events-{i}", daemon=True)
            t.start()
            threads.append(t)
        return threads

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
            except errors.ApiError as exc:
                log.debug("event %s not written: %s", p.reason, exc.message)
            except Exception:
                log.exception("event %s not written", p.reason)
            finally:
                self._queue.task_done()

    def _write(self, p: _Pending) -> None:
        inv = p.involved
        key = (p.namespace, inv["kind"], inv["name"], inv["uid"], p.type, p.reason, p.message, p.component)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            self._write_locked(key, p)
        with self._lock:
            if len(self._key_locks) > 2 * _MAX_REMEMBERED:
                self._key_locks = {k: v for k, v in self._key_locks.items() if k in self._seen}

    def _write_locked(self, key: tuple[str, ...], p: _Pending) -> None:
        rt = self._client.kinds.events
        with self._lock:
            seen = self._seen.get(key)
        if seen is not None:
            name, count, first = seen
            try:
                self._client.patch(rt, p.namespace, name, {"count": count + 1, "lastTimestamp": p.at})
                self._remember(key, (name, count + 1, first))
                return
            except errors.NotFound:
                pass
        name = f"{p.involved['name']}.{time.time_ns():x}"
        self._client.create(rt, p.namespace, {
            "metadata": {"name": name, "namespace": p.namespace},
            "involvedObject": p.involved, "reason": p.reason, "message": p.message, "type": p.type,
            "source": {"component": p.component}, "firstTimestamp": p.at, "lastTimestamp": p.at, "count": 1,
            "eventTime": None, "reportingComponent": p.component, "reportingInstance": "",
        })
        self._remember(key, (name, 1, p.at))

    def _remember(self, key: tuple[str, ...], value: tuple[str, int, str]) -> None:
        with self._lock:
            self._seen[key] = value
            self._seen.move_to_end(key)
            while len(self._seen) > _MAX_REMEMBERED:
                self._seen.popitem(last=False)
