"""Progress for the long build steps: one updating status line on a terminal, plain lines otherwise.

On a terminal the current step shows with its elapsed time and the latest line of
the tool's output, rewritten in place; in a log (CI, a pipe) each step is a line
when it starts and when it ends, with a reminder every minute for the long ones.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, out: TextIO | None = None, tty: bool | None = None, heartbeat: float = 60.0) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._step: str | None = None
        self._started = self._last_note = time.monotonic()
        self._detail = ""
        self.finished: list[tuple[str, float]] = []

    def step(self, name: str) -> None:
        """Start step `name`, ending the one before."""
        self.done()
        with self._lock:
            self._step, self._detail = name, ""
            self._started = self._last_note = time.monotonic()
            self._write(f"{name} ...", final=not self.tty)

    def detail(self, line: str) -> None:
        """A line of the current tool's output: shown in place on a terminal, as a reminder now and then in a log."""
        with self._lock:
            if self._step is None:
                return
            self._detail = line.strip()
            now = time.monotonic()
            if self.tty:
                self._write(f"{self._step} [{self._elapsed()}] {self._detail}"[:160])
            elif now - self._last_note >= self.heartbeat:
                self._last_note = now
                self._write(f"{self._step}: still running after {self._elapsed()} ({self._detail[:100]})", final=True)

    def log(self, line: str) -> None:
        with self._lock:
            self._write(line, final=True)

    def done(self) -> None:
        with self._lock:
            if self._step is not None:
                self.finished.append((self._step, time.monotonic() - self._started))
                self._write(f"{self._step}: done in {self._elapsed()}", final=True)
                self._step = None

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self._started)
        return f"{s // 60}:{s % 60:02d}"

    def _write(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()
