"""Group commit for the SQLite store: at most one thread commits at a time.

A writer whose write is queued waits here. If no commit is running it becomes
the committer and commits everything queued so far (its own write included) in
one fsynced transaction; writes queued meanwhile wait for the next one. So
concurrent writers share fsyncs, which cost milliseconds on an SD card, and only
one thread ever uses the SQLite writer connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from master.store.records import Pending


class Committer:
    def __init__(self, commit_queued: Callable[[], None]) -> None:
        """`commit_queued` commits and publishes every queued write, then calls `finish`."""
        self._commit_queued = commit_queued
        self._cv = threading.Condition(threading.Lock())
        self._busy = False

    def wait(self, pending: Pending) -> None:
        """Return once `pending` is published (or raise its error), committing if needed."""
        with self._cv:
            while not pending.done and self._busy:
                self._cv.wait()
            lead = not pending.done
            if lead:
                self._busy = True
        if lead:
            try:
                while not pending.done:
                    self._commit_queued()
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
        if pending.error is not None:
            raise pending.error

    def finish(self, batch: Iterable[Pending], error: BaseException | None = None) -> None:
        """Mark writes done (failed if `error`) and wake their writers."""
        with self._cv:
            for p in batch:
                p.error = error
                p.done = True
            self._cv.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the committer role: no commit runs meanwhile (compaction, close)."""
        with self._cv:
            while self._busy:
                self._cv.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._cv:
                self._busy = False
                self._cv.notify_all()
