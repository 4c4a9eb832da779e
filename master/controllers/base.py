"""What every controller shares: its environment, and the worker loop around its `sync(key)`.

A controller's informer handlers only enqueue keys. Workers take a key, call
`sync(key)` — which re-reads desired and actual state from the caches and acts
on the difference — and on failure queue the key again with back-off. The
first worker also re-queues every key of the controller's primary informer
periodically (a resync), so a missed event costs at most one resync period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from core import errors
from core.workqueue import WorkQueue
from master.client import Env, Informer, obj_key

log = logging.getLogger(__name__)


class Controller:
    """Subclasses set `name`, wire informers in `__init__`, and implement `sync(key)`."""

    name = "controller"
    # The informer whose keys a resync re-queues (None: no periodic resync).
    primary: Informer | None = None
    # Worker threads; 0: `controller_workers` from the settings (light controllers use 1).
    workers = 0

    def __init__(self, env: Env) -> None:
        self.env = env
        self.client = env.client
        self.kinds = env.kinds
        self.queue = WorkQueue(self.name)
        self._next_resync = 0.0

    def sync(self, key: str) -> None:
        raise NotImplementedError

    def resync_keys(self) -> Iterable[str]:
        return self.primary.keys() if self.primary is not None else ()

    def enqueue(self, obj: dict[str, object] | None) -> None:
        if obj is not None:
            self.queue.add(obj_key(obj))

    def start(self) -> list[threading.Thread]:
        self._next_resync = time.monotonic() + self.resync_period()
        threads = []
        for i in range(max(1, self.workers or self.env.settings.controller_workers)):
            t = threading.Thread(target=self._worker, args=(i == 0,), name=f"{self.name}-{i}", daemon=True)
            t.start()
            threads.append(t)
        return threads

    def _worker(self, resyncs: bool) -> None:
        stopping = self.env.stopping
        while not stopping.is_set():
            if resyncs and time.monotonic() >= self._next_resync:  # the first worker also keeps time
                self._next_resync = time.monotonic() + self.resync_period()
                for k in self.resync_keys():
                    self.queue.add(k)
            key = self.queue.get(timeout=min(0.5, self.resync_period()))
            if key is not None:
                self.process(key)
        self.queue.shutdown()

    def process(self, key: str) -> None:
        """Sync a key taken from the queue, as a worker does: on success its back-off starts over; on failure
        it is queued again after a back-off that doubles with each failure in a row."""
        try:
            self.sync(key)
            self.queue.forget(key)
        except errors.ApiError as exc:
            if self.env.stopping.is_set():
                return
            log.log(logging.DEBUG if isinstance(exc, errors.Conflict) else logging.INFO,
                    "%s: sync %s: %s (will retry)", self.name, key, exc.message)
            self.queue.add_rate_limited(key)
        except Exception:
            if self.env.stopping.is_set():
                return
            log.exception("%s: sync %s failed (will retry)", self.name, key)
            self.queue.add_rate_limited(key)
        finally:
            self.queue.done(key)

    def resync_period(self) -> float:
        return self.env.settings.controller_resync_seconds
