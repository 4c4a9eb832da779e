"""Expectations: how a controller that creates and deletes pods keeps from acting twice on a lagging cache.

`Expectations` (client-go's ControllerExpectations) remember the creations and
deletions a controller made but has not yet seen through its informer, so a sync
never acts twice on a cache that lags its writes. `UidExpectations` (the Job
controller's uidTrackingExpectations) remember the pods whose tracking finalizer
a controller removed, until its informer shows the removal: a pod counted once
must not look uncounted to the next sync. The work queue the controllers share
with the kubelet is `core.workqueue.WorkQueue`.
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


class UidExpectations:
    """Per controller key: uids of objects whose change (a removed finalizer) the informer has yet to show.

    No expiry, as in client-go: the informer reports every change, or the deletion, of each object.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uids: dict[str, set[str]] = {}

    def expect(self, key: str, uids: set[str]) -> None:
        with self._lock:
            self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        with self._lock:
            uids = self._uids.get(key)
            if uids is not None:
                uids.discard(uid)
                if not uids:
                    del self._uids[key]

    def expected(self, key: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._uids.get(key, ()))

    def forget(self, key: str) -> None:
        with self._lock:
            self._uids.pop(key, None)
