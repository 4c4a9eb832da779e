"""Exponential back-off per key (CrashLoopBackOff, ImagePullBackOff), as the kubelet's flowcontrol.Backoff.

The first failure restarts at once; after that a key waits 10 s, 20 s, 40 s ...
up to 5 minutes after its last failure. A container that ran for 10 minutes
before failing starts again from 10 s, as does a key unused for twice the cap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float, cap: float, clock: Callable[[], float]) -> None:
        self.initial, self.cap, self._clock = initial, cap, clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def in_backoff_since(self, key: str, event_time: float) -> float:
        """Seconds left to wait after a failure at `event_time`; 0 when the key may try again."""
        with self._lock:
            entry = self._entries.get(key)
            now = self._clock()
            if entry is None or now - entry.last_update > 2 * self.cap:
                return 0.0
            return max(0.0, entry.delay - (now - event_time))

    def next(self, key: str) -> None:
        """Record an attempt: the next failure of `key` waits twice as long (up to the cap)."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is None or now - entry.last_update > 2 * self.cap:
                self._entries[key] = _Entry(self.initial, now)
            else:
                entry.delay = min(entry.delay * 2, self.cap)
                entry.last_update = now

    def delay(self, key: str) -> float:
        with self._lock:
            entry = self._entries.get(key)
            return entry.delay if entry else self.initial

    def reset(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k.startswith(prefix)]:
                del self._entries[key]


def format_duration(seconds: float) -> str:
    """Go's time.Duration text for whole seconds: 10s, 1m20s, 5m0s."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60}s"
