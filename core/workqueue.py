"""The keyed work queue (client-go's workqueue) that the master's controllers and scheduler and the
kubelet's pod workers all turn events into syncs with, so the two sides share one implementation.

A key waits in the queue at most once however often it is added, and is never handed to two
workers at once: an `add` while a worker has the key marks it, and it is queued again when that
worker calls `done`. `add_after` keeps one timer per key, the earliest asked for.
`add_rate_limited` re-adds a key after an exponential back-off for its failures so far, until
`forget` says it synced. After `shutdown` every `get`, waiting or not, returns None at once (keys
still waiting are dropped: a stopping process starts no new syncs) and adds are ignored.

All time — timers and `get`'s timeout — is read from one clock, which tests replace: with a fake
clock that does not move, poll with `get(timeout=0)` rather than block.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable


class WorkQueue:
    def __init__(self, name: str = "", *, base_delay: float = 0.005, max_delay: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name  # for logs and thread names; the queue does not use it
        self._base = base_delay
        self._max = max_delay
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[str] = deque()  # ready, in order; each key here is also in _dirty
        self._dirty: set[str] = set()  # wanted: ready, or to be re-queued when its worker is done
        self._processing: set[str] = set()  # handed to a worker and not yet done
        self._timers: list[tuple[float, str]] = []  # heap; an entry whose time is not _due[key] is stale
        self._due: dict[str, float] = {}  # each key's one pending timer
        self._failures: dict[str, int] = {}
        self._closed = False

    def add(self, key: str) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: str) -> None:
        if self._closed or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; of several pending requests the earliest wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            due = self._clock() + delay
            if self._closed or self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._timers, (due, key))
            # All: a getter woken alone might time out and return, leaving the others asleep past `due`.
            self._cond.notify_all()

    def add_rate_limited(self, key: str) -> None:
        """Add `key` again after `base_delay * 2**failures` (at most `max_delay`), counting one more failure."""
        with self._cond:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        self.add_after(key, min(self._base * 2.0 ** n, self._max))

    def forget(self, key: str) -> None:
        """`key` synced: its back-off starts over."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> str | None:
        """The next key to work on (call `done` with it afterwards); None once shut down or after `timeout`.

        Without a timeout, waits until a key is ready or the queue is shut down.
        """
        with self._cond:
            deadline = None if timeout is None else self._clock() + timeout
            while not self._closed:
                now = self._clock()
                while self._timers and self._timers[0][0] <= now:
                    due, key = heapq.heappop(self._timers)
                    if self._due.get(key) == due:
                        del self._due[key]
                        self._add_locked(key)
                if self._queue:
                    key = self._queue.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                wait = None if deadline is None else deadline - now
                if wait is not None and wait <= 0:
                    return None
                if self._timers:
                    until_due = self._timers[0][0] - now
                    wait = until_due if wait is None else min(wait, until_due)
                self._cond.wait(wait)
            return None

    def done(self, key: str) -> None:
        """A worker finished `key`; if it was added meanwhile, it is ready again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._closed:
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self) -> None:
        """Wake every getter with None; from now on adds are ignored."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Keys ready to be handed out (not those being processed or waiting for a timer)."""
        with self._cond:
            return len(self._queue)
