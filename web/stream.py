"""Server-Sent Events for the page: the summary when it changes, a comment now and then to keep the line open.

Each open stream holds one thread of the status page's small server, so their
number is capped (`Streams`); a viewer turned away gets 503 and its page polls
`/api/summary` instead. A burst of changes (a Deployment scaled to ten pods
makes dozens of writes) is coalesced by waiting `settle` seconds after the
first before reading, and a summary identical to the last one sent (a
heartbeat that changes nothing shown) is not sent at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from web.feed import ChangeFeed, SummaryCache

RETRY_MS = 2000
KEEPALIVE_SECONDS = 5.0  # also how soon a viewer that left frees its thread: writing is how we notice
SETTLE_SECONDS = 0.2


class Streams:
    """A counter of open streams with a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def try_open(self) -> bool:
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
            return True

    def close(self) -> None:
        with self._lock:
            self._open -= 1

    @property
    def open(self) -> int:
        return self._open


def events(feed: ChangeFeed, cache: SummaryCache, stopping: threading.Event, stamp: Callable[[bytes], bytes],
           settle: float = SETTLE_SECONDS, keepalive: float = KEEPALIVE_SECONDS) -> Iterator[bytes]:
    """The SSE body: the summary at once, then each time it changes, until `stopping` or the viewer leaves."""
    seen, sent = cache.current()
    yield f"retry: {RETRY_MS}\n\n".encode() + _message(stamp(sent))
    quiet_since = time.monotonic()
    while not stopping.is_set():
        generation = feed.wait_beyond(seen, timeout=1.0)
        if generation == seen:
            if time.monotonic() - quiet_since >= keepalive:
                quiet_since = time.monotonic()
                yield b": keepalive\n\n"
            continue
        if stopping.wait(settle):
            break
        seen, body = cache.current()
        if body != sent:
            sent = body
            quiet_since = time.monotonic()
            yield _message(stamp(body))


def _message(data: bytes) -> bytes:
    return b"event: summary\ndata: " + data + b"\n\n"
