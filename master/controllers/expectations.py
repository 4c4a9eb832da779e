"""Expectations: how a controller that creates and deletes pods keeps from acting twice on a lagging cache.

`Expectations` (client-go's ControllerExpectations) remember the creations and
deletions a controller made but has not yet seen through its informer, so a sync
never acts twice on a cache that lags its writes. The work queue the controllers
share with the kubelet is `core.workqueue.WorkQueue`.
"""

from __future__ import annotations

import threading
import time


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
