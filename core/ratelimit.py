"""A token bucket: at most `burst` events at once and `rate` per second on average, for logs a client can provoke.

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
