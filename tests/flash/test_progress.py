"""Progress output: a redrawn bar with throughput and ETA on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import io

from pikube.flash import progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_shows_throughput_and_eta_and_redraws_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    bar = progress.Bar(out, clock)
    bar.start("writing", 1_000_000_000)
    clock.now += 2
    bar.advance(200_000_000)  # 100 MB/s, 800 MB left: 8 s
    frames = out.getvalue().split("\r")
    assert len(frames) == 3 and frames[0] == ""
    assert "writing   [#####-------------------]  20%  200 MB of 1,000 MB  100 MB/s  ETA 0:08" in frames[2]
    bar.advance(1)  # within 0.1 s of the last frame: not redrawn
    assert len(out.getvalue().split("\r")) == 3
    clock.now += 8
    bar.advance(800_000_000 - 1)
    bar.finish()
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("writing: 1,000 MB in 0:10 (100 MB/s)") and last.endswith("\n")
    assert "ETA" not in last


def test_lines_are_plain_and_few() -> None:
    out, clock = io.StringIO(), Clock()
    lines = progress.Lines(out, clock)
    lines.start("verifying", 100_000_000)
    for _ in range(100):
        clock.now += 0.01
        lines.advance(1_000_000)
    lines.finish()
    text = out.getvalue()
    assert "\r" not in text
    rows = text.splitlines()
    assert rows[0] == "verifying: 100 MB"
    assert rows[1] == "verifying: 10% (10 MB, 100 MB/s)"
    assert len(rows) == 11 and rows[-1] == "verifying: done, 100 MB in 0:01 (100 MB/s)"


def test_lines_skip_tenths_passed_in_one_step() -> None:
    out = io.StringIO()
    lines = progress.Lines(out, Clock())
    lines.start("writing", 10)
    lines.advance(7)
    lines.advance(1)
    assert out.getvalue().splitlines()[1:] == ["writing: 70% (0.0 MB, 0 MB/s)", "writing: 80% (0.0 MB, 0 MB/s)"]


def test_terminal_gets_the_bar_a_pipe_gets_lines() -> None:
    assert isinstance(progress.for_stream(Tty()), progress.Bar)
    assert isinstance(progress.for_stream(io.StringIO()), progress.Lines)
