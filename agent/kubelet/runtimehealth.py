"""Whether the container runtime answers: the kubelet's "container runtime is down" for this board.

Docker is pinged every `period` seconds with a short timeout (a hung engine must
not hold the check for the SDK's 60 s). After `failures_to_down` failed pings in
a row the runtime counts as down; the first ping answered brings it back. A ping
left unanswered for the whole timeout is followed by the next at once, so
dockerd stopping is noticed in about 2 s and dockerd hanging in about 5 s, while
one refused ping (dockerd restarting) or an engine too busy to answer for a
couple of seconds changes nothing.
`on_change(error)` is called on each change (None: up again) from the checking
thread; the agent then writes its Node's Ready condition (False, `KubeletNotReady`,
"container runtime is down: ...") and has every pod's status say it is not ready,
so Services stop sending traffic to a board that can no longer run its pods.
A ping is one `GET /_ping` on the engine's socket: about a millisecond.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PERIOD_SECONDS = 1.0
PING_TIMEOUT_SECONDS = 2.0
FAILURES_TO_DOWN = 2


class RuntimeHealth:
    def __init__(self, ping: Callable[[], str | None], on_change: Callable[[str | None], None],
                 period: float = PERIOD_SECONDS, failures_to_down: int = FAILURES_TO_DOWN,
                 timeout: float = PING_TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        """`ping()` gives None when the runtime answered (within `timeout`), else why not."""
        self._ping, self._on_change, self._clock = ping, on_change, clock
        self.period, self.failures_to_down, self.timeout = period, max(1, failures_to_down), timeout
        self._error: str | None = None
        self._failures = 0
        self._unanswered = False  # the last ping waited out its whole timeout
        self._lock = threading.Lock()

    def error(self) -> str | None:
        """None while the runtime answers; else why it is considered down."""
        with self._lock:
            return self._error

    def down(self) -> bool:
        return self.error() is not None

    def next_check_in(self) -> float:
        """Seconds until the next ping: none after one that was left unanswered (it waited already)."""
        with self._lock:
            return 0.0 if self._unanswered else self.period

    def check(self) -> bool:
        """Ping once; True when the state (up/down, or why down) changed."""
        start = self._clock()
        problem = self._ping()
        with self._lock:
            self._unanswered = problem is not None and self._clock() - start >= self.timeout * 0.9
            if problem is None:
                self._failures = 0
                changed, self._error = self._error is not None, None
            else:
                self._failures += 1
                if self._failures < self.failures_to_down:
                    return False
                changed, self._error = self._error != problem, problem
            error = self._error
        if changed:
            self._on_change(error)
        return changed

    def run(self, stop: threading.Event) -> None:
        logged = False
        while not stop.wait(self.next_check_in()):
            try:
                self.check()
            except Exception:  # the check must outlive anything on_change does; one traceback is enough
                if not logged:
                    log.exception("container runtime check failed")
                logged = True
