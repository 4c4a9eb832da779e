"""A token bucket (at most `burst` events at once and `rate` per second on average, for logs a client can
provoke) and keyed slots (at most N of something at once per key, e.g. streams per board).

A request that fails inside a server can be repeated by whoever sent it; each
traceback is ~100 lines. Logging every one would let one client write hundreds
of MB a minute onto a board's SD card, so servers log one line per failure and
a traceback only while the bucket has tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Whether an event may happen now (and count it)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self._burst), self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class KeyedSlots:
    """Counts what is held per key; `acquire` refuses beyond a cap instead of waiting."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, cap: int) -> bool:
        with self._lock:
            n = self._held.get(key, 0)
            if n >= cap:
                return False
            self._held[key] = n + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            n = self._held.get(key, 0) - 1
            if n > 0:
                self._held[key] = n
            else:
                self._held.pop(key, None)

    def held(self, key: str) -> int:
        with self._lock:
            return self._held.get(key, 0)
