"""The seam between the doctor and the machine: every read, command and write goes through `Host`.

`RealHost` is the machine; tests use a fake that holds files and command
outputs in dicts (a Raspberry Pi 4 with the memory cgroup off, a board whose
clock is in 1970...). Nothing here decides anything: checks live in `checks`.
"""

from __future__ import annotations

import os
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

    def run(self, argv: Sequence[str]) -> tuple[int, str] | None:
        """Exit status and output (stdout + stderr) of a command; None when the program is not installed."""
        ...

    def disk(self, path: str) -> tuple[int, int]:
        """Total and free (for unprivileged use) bytes of the filesystem holding `path` or its nearest parent."""
        ...

    def docker_version(self, docker_host: str) -> tuple[bool, str]:
        """(True, server version) when the engine at `docker_host` answers, else (False, why not)."""
        ...

    def now(self) -> float: ...

    def write_text(self, path: str, text: str) -> None:
        """Replace a file (atomically); only `--fix` writes."""
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

    def run(self, argv: Sequence[str]) -> tuple[int, str] | None:
        if shutil.which(argv[0]) is None:
            return None
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return 1, str(exc)
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def disk(self, path: str) -> tuple[int, int]:
        p = Path(path)
        while not p.exists() and p != p.parent:
            p = p.parent
        st = os.statvfs(p)
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    def docker_version(self, docker_host: str) -> tuple[bool, str]:
        import docker

        try:
            client = docker.DockerClient(base_url=docker_host, timeout=5)
        except Exception as exc:
            return False, str(exc)
        try:
            return True, str(client.version().get("Version", "unknown"))
        except Exception as exc:
            return False, _short(exc)
        finally:
            client.close()

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


def _short(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "No such file or directory", "Permission denied", "timed out"):
        if marker in text:
            return marker.lower()
    return text[:160]
