"""Progress of a long write or verify: a bar with throughput and ETA on a terminal, lines otherwise.

A card takes minutes; a person at a terminal wants to see it move and when it
ends, while a script (or CI log) wants a few plain lines it can keep. The clock
is injectable so tests check both renderings without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TextIO


class Progress(Protocol):
    """What the writer and verifier report to."""

    def start(self, phase: str, total: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def finish(self) -> None: ...


class Silent:
    """Reports nothing (library use, benchmarks)."""

    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, done: int) -> None:
        pass

    def finish(self) -> None:
        pass


def megabytes(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10e6 else f"{n / 1e6:.1f} MB"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Base:
    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self.phase = ""
        self.total = 0
        self.done = 0
        self.started = 0.0

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done, self.started = phase, max(total, 0), 0, self.clock()

    def advance(self, done: int) -> None:
        self.done += done

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0


class Bar(_Base):
    """`writing  [#########-----------]  45%  770 MB of 1,700 MB  85 MB/s  ETA 0:11` redrawn in place."""

    WIDTH = 24
    EVERY = 0.1  # seconds between redraws

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(out, clock)
        self.drawn = float("-inf")

    def start(self, phase: str, total: int) -> None:
        super().start(phase, total)
        self.drawn = float("-inf")
        self._draw()

    def advance(self, done: int) -> None:
        super().advance(done)
        if self.clock() - self.drawn >= self.EVERY:
            self._draw()

    def _draw(self) -> None:
        self.drawn = self.clock()
        filled = round(self.fraction() * self.WIDTH)
        rate = self.rate()
        eta = f"ETA {duration((self.total - self.done) / rate)}" if rate > 0 and self.done < self.total else ""
        line = (f"{self.phase:<9} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {self.fraction() * 100:3.0f}%  "
                f"{megabytes(self.done)} of {megabytes(self.total)}  {rate / 1e6:.0f} MB/s  {eta}")
        self.out.write("\r" + line.ljust(79))
        self.out.flush()

    def finish(self) -> None:
        self._draw()
        elapsed = self.clock() - self.started
        self.out.write(f"\r{self.phase}: {megabytes(self.done)} in {duration(elapsed)} "
                       f"({self.rate() / 1e6:.0f} MB/s)".ljust(79) + "\n")
        self.out.flush()


class Lines(_Base):
    """One plain line per tenth of the work (and one at the end), for logs and pipes."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(out, clock)
        self.next_tenth = 1

    def start(self, phase: str, total: int) -> None:
        super().start(phase, total)
        self.next_tenth = 1
        self.out.write(f"{phase}: {megabytes(total)}\n")
        self.out.flush()

    def advance(self, done: int) -> None:
        super().advance(done)
        fraction = self.fraction()
        if self.next_tenth < 10 and fraction >= self.next_tenth / 10 and fraction < 1:
            self.out.write(f"{self.phase}: {fraction * 100:.0f}% ({megabytes(self.done)}, "
                           f"{self.rate() / 1e6:.0f} MB/s)\n")
            self.out.flush()
            self.next_tenth = int(fraction * 10) + 1

    def finish(self) -> None:
        elapsed = self.clock() - self.started
        self.out.write(f"{self.phase}: done, {megabytes(self.done)} in {duration(elapsed)} "
                       f"({self.rate() / 1e6:.0f} MB/s)\n")
        self.out.flush()


def for_stream(out: TextIO) -> Progress:
    """A bar on a terminal, plain lines otherwise."""
    return Bar(out) if out.isatty() else Lines(out)
