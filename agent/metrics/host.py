"""The board's own CPU time and working-set memory, from /proc as cAdvisor reads them for the root cgroup."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ns(proc: Path = Path("/proc")) -> int | None:
    """Cumulative busy CPU time of all cores (the first line of /proc/stat without idle and iowait), in ns."""
    try:
        first = (proc / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(x) for x in first[1:]]
    busy = sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # user..steal minus idle, iowait
    return busy * 1_000_000_000 // CLOCK_TICKS


def working_set(proc: Path = Path("/proc")) -> int | None:
    """Bytes in use minus the inactive file cache (MemTotal - MemFree - Inactive(file)), as cAdvisor's root."""
    try:
        info = {k: int(v.split()[0]) * 1024 for k, _, v in
                (line.partition(":") for line in (proc / "meminfo").read_text().splitlines()) if v.strip()}
    except (OSError, ValueError):
        return None
    try:
        return max(0, info["MemTotal"] - info["MemFree"] - info.get("Inactive(file)", 0))
    except KeyError:
        return None
