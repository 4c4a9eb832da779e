"""Live updates without a watch per viewer: one store watch per kind, one shared summary.

`ChangeFeed` runs one thread per kind the page shows, each blocked on a
`store.watch` of that kind's prefix; any event bumps a generation counter and
wakes every waiting viewer. `SummaryCache` rebuilds the summary at most once
per generation, however many viewers ask, so ten open phones cost what one
does. The watches start with the first viewer, not with the master: an
unwatched page costs nothing. A watch the store drops (Gone) is restarted from
the current revision and counts as a change, so nothing is missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from core import errors
from web.source import Source

log = logging.getLogger(__name__)


class ChangeFeed:
    def __init__(self, store: Source, prefixes: Iterable[str], stopping: threading.Event) -> None:
        self._store = store
        self._prefixes = tuple(prefixes)
        self._stopping = stopping
        self._cond = threading.Condition()
        self._generation = 0
        self._threads: list[threading.Thread] = []

    def ensure_started(self) -> None:
        """Start the watches (once). Changes after this call are seen, whatever happens later."""
        with self._cond:
            if self._threads:
                return
            since = self._store.revision()
            for prefix in self._prefixes:
                t = threading.Thread(target=self._run, args=(prefix, since), daemon=True,
                                     name=f"web-watch{prefix.rstrip('/').replace('/', '-')}")
                t.start()
                self._threads.append(t)

    @property
    def generation(self) -> int:
        return self._generation

    def wait_beyond(self, seen: int, timeout: float) -> int:
        """The generation once it differs from `seen`, or after `timeout` s (or when stopping) as it is."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen or self._stopping.is_set(), timeout)
            return self._generation

    def wake(self) -> None:
        """Wake every waiter (used when stopping)."""
        with self._cond:
            self._cond.notify_all()

    def _bump(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _run(self, prefix: str, since: int) -> None:
        while not self._stopping.is_set():
            try:
                watcher = self._store.watch(prefix, since)
            except errors.Gone:
                since = self._store.revision()
                self._bump()
                continue
            except Exception:  # the store is closing, or broken: retry slowly, never die
                if self._stopping.wait(1.0):
                    return
                log.exception("status page: cannot watch %s", prefix)
                continue
            try:
                while not self._stopping.is_set():
                    event = watcher.next(1.0)
                    if event is not None:
                        since = event.revision
                        self._bump()
            except errors.Gone:
                since = self._store.revision()
                self._bump()
            except Exception:
                if not self._stopping.is_set():
                    log.exception("status page: watch of %s failed; watching again", prefix)
                    since = self._store.revision()
                    self._bump()
                    self._stopping.wait(1.0)
            finally:
                watcher.close()

    def join(self, timeout: float) -> None:
        for t in self._threads:
            t.join(timeout)


class SummaryCache:
    """The newest summary, rebuilt only when the feed's generation moved since the last build."""

    def __init__(self, feed: ChangeFeed, build: Callable[[], bytes]) -> None:
        self._feed = feed
        self._build = build
        self._lock = threading.Lock()
        self._built_at = -1
        self._body = b""

    def current(self) -> tuple[int, bytes]:
        """(generation, encoded summary); the generation is read before listing, so a change during the
        build makes the next call build again."""
        self._feed.ensure_started()
        with self._lock:
            generation = self._feed.generation
            if generation != self._built_at:
                self._body = self._build()
                self._built_at = generation
            return self._built_at, self._body
