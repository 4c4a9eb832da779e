"""What the agent says about things that keep failing: one log line per change of cause, not one per retry.

A pod that cannot start (a missing config map, a volume that cannot be set up, a
container config Docker refuses) is retried for as long as it exists, so logging
each attempt would write a line, or a traceback, every few seconds onto an SD
card. `Complaints` remembers, per key (a pod's sandbox, one of its containers,
its sync as a whole), the cause it last logged: the same cause again logs
nothing, a new cause logs one line, and the first success after a failure logs
that it recovered. Tracebacks are kept for errors nobody expected (a bug, not a
missing object) and even then at most one per `traceback_every` seconds for the
whole agent; the pod's status and events say the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

TRACEBACK_EVERY_SECONDS = 600.0


class Complaints:
    def __init__(self, logger: logging.Logger, clock: Callable[[], float],
                 traceback_every: float = TRACEBACK_EVERY_SECONDS) -> None:
        self._log, self._clock, self._every = logger, clock, traceback_every
        self._causes: dict[str, str] = {}
        self._last_traceback: float | None = None
        self._lock = threading.Lock()

    def failed(self, key: str, subject: str, cause: str, exc: BaseException | None = None,
               unexpected: bool = False) -> bool:
        """Log `subject: cause` unless it is what `key` last logged; True if a line was written.

        With `unexpected`, the line carries `exc`'s traceback when none was written
        in the last `traceback_every` seconds (else it says one was left out).
        """
        with self._lock:
            if self._causes.get(key) == cause:
                return False
            self._causes[key] = cause
            trace = False
            if unexpected and exc is not None:
                now = self._clock()
                trace = self._last_traceback is None or now - self._last_traceback >= self._every
                if trace:
                    self._last_traceback = now
        if trace:
            self._log.error("%s: %s", subject, cause, exc_info=exc)
        elif unexpected:
            self._log.error("%s: %s (traceback left out: one was logged in the last %.0f s)", subject, cause,
                            self._every)
        else:
            self._log.warning("%s: %s", subject, cause)
        return True

    def recovered(self, key: str, subject: str, what: str) -> bool:
        """Log `subject: what` once if `key` had a complaint; True if a line was written."""
        with self._lock:
            if self._causes.pop(key, None) is None:
                return False
        self._log.info("%s: %s", subject, what)
        return True

    def cause(self, key: str) -> str | None:
        with self._lock:
            return self._causes.get(key)

    def forget(self, prefix: str) -> None:
        """Drop what is remembered for keys starting with `prefix` (a pod that is gone), without a log line."""
        with self._lock:
            for key in [k for k in self._causes if k.startswith(prefix)]:
                del self._causes[key]


def describe(exc: BaseException) -> str:
    """`Type: message` of an exception, for a log line (the message alone when the type adds nothing)."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
