"""Finding and stopping the processes a dev run started, without trusting pids alone.

A pid in a state file may have been reused since; so processes are found by what
identifies them (a path in their command line, the network namespace they live
in) and stopped politely first: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def _pids() -> list[int]:
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def cmdline(pid: int) -> list[str]:
    """The process's argv, or [] when it is gone (or a kernel thread)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone (it is reaped when possible)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name, which is in parentheses and may contain spaces.
    return stat[stat.rindex(")") + 2] not in "ZX"


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/PID/stat's 22nd field), None when it is gone.

    A pid and its start time name one process for good: a reused pid starts later, and unlike the
    command line the start time survives the process replacing itself (`exec`)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (e.g. an engine's state directory)."""
    me = os.getpid()
    return [pid for pid in _pids() if pid != me and any(text in arg for arg in cmdline(pid)) and alive(pid)]


def pids_in_netns(netns_file: Path) -> list[int]:
    """Processes living in the network namespace bound at `netns_file`."""
    try:
        want = netns_file.stat()
    except OSError:
        return []
    found = []
    for pid in _pids():
        try:
            st = os.stat(PROC / str(pid) / "ns" / "net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino) and alive(pid):
            found.append(pid)
    return found


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait up to `timeout` seconds for `pids` to exit; return those still alive."""
    left = list(pids)
    deadline = time.monotonic() + timeout
    while left:
        left = [pid for pid in left if alive(pid)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return left


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def terminate(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGTERM, wait up to `timeout`, then SIGKILL; return pids that survived even that."""
    pids = [pid for pid in pids if alive(pid)]
    _signal(pids, signal.SIGTERM)
    left = wait_gone(pids, timeout)
    _signal(left, signal.SIGKILL)
    return wait_gone(left, 5.0)
