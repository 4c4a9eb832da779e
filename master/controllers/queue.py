"""Work queues and expectations: how a controller turns many events into few, ordered syncs.

`WorkQueue` follows client-go's: a key is queued at most once, a key being
processed is never handed to a second worker (an `add` meanwhile re-queues it
when the first finishes), delayed adds wait in a heap, and failures back off
exponentially per key. `Expectations` (client-go's ControllerExpectations)
remember the creations and deletions a controller made but has not yet seen
through its informer, so a sync never acts twice on a cache that lags its writes.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque


class WorkQueue:
    def __init__(self, name: str, base_delay: float = 0.005, max_delay: float = 60.0) -> None:
        self.name = name
        self._base = base_delay
        self._max = max_delay
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._waiting: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = itertools.count()
        self._failures: dict[str, int] = {}
        self._shutdown = False

    def add(self, key: str) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: str) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (the earliest of several requests wins)."""
        if delay <= 0:
            self.add(key)
            return
        due = time.monotonic() + delay
        with self._cond:
            if self._shutdown or self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._waiting, (due, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> None:
        """Queue `key` again after an exponential back-off for its failures so far."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self._base * (2 ** n), self._max))

    def forget(self, key: str) -> None:
        """`key` synced successfully: its back-off starts over."""
        self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def get(self, timeout: float) -> str | None:
        """The next key to process (mark it `done` afterwards), or None after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                while self._waiting and self._waiting[0][0] <= now:
                    due, _, key = heapq.heappop(self._waiting)
                    if self._due.get(key) == due:
                        del self._due[key]
                        self._add_locked(key)
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if self._shutdown or now >= deadline:
                    return None
                wait = deadline - now
                if self._waiting:
                    wait = min(wait, self._waiting[0][0] - now)
                self._cond.wait(max(wait, 0.0))

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)


class Expectations:
    """Per controller key: creations still to be observed, and pod keys still to be seen deleted.

    A record older than `ttl` is treated as satisfied, so a lost event cannot stall a
    controller for ever (client-go uses 5 minutes).
    """

    def __init__(self, ttl: float = 300.0) -> None:
        self._ttl = ttl
        self._lock = threading.Lock()
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._stamp: dict[str, float] = {}

    def expect(self, key: str, adds: int = 0, deletions: set[str] | None = None) -> None:
        with self._lock:
            self._adds[key] = adds
            self._dels[key] = set(deletions or ())
            self._stamp[key] = time.monotonic()

    def creation_observed(self, key: str) -> None:
        with self._lock:
            if key in self._adds:
                self._adds[key] -= 1

    def deletion_observed(self, key: str, dependent: str) -> None:
        with self._lock:
            dels = self._dels.get(key)
            if dels is not None:
                dels.discard(dependent)

    def satisfied(self, key: str) -> bool:
        with self._lock:
            if key not in self._stamp:
                return True
            if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
                return True
            return time.monotonic() - self._stamp[key] > self._ttl

    def forget(self, key: str) -> None:
        with self._lock:
            self._adds.pop(key, None)
            self._dels.pop(key, None)
            self._stamp.pop(key, None)
