"""The seam between pikube and its board: every file read, command, disk measure and write goes through `Host`.

The agent reads its board's facts through it (`agent/hostfacts.py`), the doctor
its checks and fixes (`pikube/doctor/`), `pikube info` both; tests hand them one
fake Raspberry Pi that holds files and command outputs in dicts
(`tests/core/fakepi.py`). Nothing here decides anything.
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from core.fsutil import write_atomic


class Host(Protocol):
    def read_text(self, path: str) -> str | None:
        """The file's text, or None when it cannot be read."""
        ...

    def exists(self, path: str) -> bool: ...

    def run(self, argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str] | None:
        """Exit status and output (stdout + stderr) of a command; None when the program is not installed."""
        ...

    def disk(self, path: str) -> tuple[int, int]:
        """Total and free (for unprivileged use) bytes of the filesystem holding `path` or its nearest parent."""
        ...

    def machine(self) -> str:
        """The kernel's machine name (`aarch64`, `x86_64`)."""
        ...

    def cpu_count(self) -> int: ...

    def now(self) -> float: ...

    def write_text(self, path: str, text: str) -> None:
        """Replace a file (atomically)."""
        ...


class RealHost:
    """This machine."""

    def read_text(self, path: str) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def run(self, argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str] | None:
        if shutil.which(argv[0]) is None:
            return None
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, str(exc)
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def disk(self, path: str) -> tuple[int, int]:
        p = Path(path)
        while not p.exists() and p != p.parent:
            p = p.parent
        st = os.statvfs(p)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def machine(self) -> str:
        return platform.machine()

    def cpu_count(self) -> int:
        return os.cpu_count() or 1

    def now(self) -> float:
        return time.time()

    def write_text(self, path: str, text: str) -> None:
        """A file that exists keeps its mode (and, written by root, its owner); a new one is 0644."""
        try:
            st: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is None:
            write_atomic(path, text, 0o644, make_parents=True)
        elif os.geteuid() == 0:
            write_atomic(path, text, stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
        else:
            write_atomic(path, text, stat.S_IMODE(st.st_mode))
