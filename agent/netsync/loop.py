"""One thread that runs the network sync: soon after something changed, and now and then regardless.

API changes come in bursts (a Deployment scaled to ten: ten Endpoints updates in
a second); each `kick()` only marks the state dirty, and the loop waits
`debounce` seconds before syncing so a burst costs one nftables transaction.
Every `resync` seconds a full sync re-applies everything even if nothing seems to
have changed, which repairs what someone changed by hand. A failed sync is
retried with a back-off of 1 s doubling to 10 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class SyncLoop:
    """Calls `sync(full)` on its own thread; `full` is True when the periodic resync is due."""

    def __init__(self, sync: Callable[[bool], None], debounce: float, resync: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sync, self.debounce, self.resync, self._clock = sync, debounce, resync, clock
        self._kicked = threading.Event()
        self._stop = threading.Event()

    def kick(self) -> None:
        """Something changed: sync soon."""
        self._kicked.set()

    def stop(self) -> None:
        self._stop.set()
        self._kicked.set()

    def run(self) -> None:
        next_full = self._clock()
        failures = 0
        while not self._stop.is_set():
            woke = self._kicked.wait(timeout=max(0.0, next_full - self._clock()))
            if self._stop.is_set():
                return
            if woke and self.debounce > 0:
                self._stop.wait(self.debounce)
            self._kicked.clear()
            full = self._clock() >= next_full
            try:
                self._sync(full)
            except Exception:
                failures += 1
                delay = min(2.0 ** (failures - 1), 10.0)
                log.exception("network sync failed; retrying in %.0fs", delay)
                self._stop.wait(delay)
                self._kicked.set()
                continue
            failures = 0
            if full:
                next_full = self._clock() + self.resync
