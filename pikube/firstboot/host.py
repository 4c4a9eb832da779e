"""What a first-boot step may touch: files under a root prefix, and commands through an injected runner.

On a board the root is `/` and the runner runs the command; in tests the root
is a temporary directory and the runner records (and fakes) the commands, so a
step's whole effect is visible as files and argv lists. `live` says whether the
root is the running system: only then do steps also change the running state
(the kernel's host name, rfkill, starting services). File writes are
idempotent: a file already holding the wanted content is not rewritten, so a
step reports "unchanged" and the SD card is spared the write.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core import fsutil, jointoken


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""


class CommandFailed(Exception):
    """A command exited non-zero (or could not start); the message names it and ends with its last error line."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
        detail = f": {last}" if last else ""
        super().__init__(f"`{' '.join(self.argv)}` exited {returncode}{detail}")


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
                 env: Mapping[str, str] | None = None, echo: bool = False) -> Completed:
        """Run `argv`; `env` adds variables; `echo` copies its output lines to the journal as they come."""
        ...


class SubprocessRunner:
    """The real runner: commands with a timeout, their output captured (and echoed when asked)."""

    def __init__(self, timeout: float = 1800.0) -> None:
        self.timeout = timeout

    def __call__(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
                 env: Mapping[str, str] | None = None, echo: bool = False) -> Completed:
        full_env = {**os.environ, **env} if env else None
        try:
            if echo:
                out = self._echoed(argv, full_env)
            else:
                proc = subprocess.run(list(argv), input=input, capture_output=True, text=True, env=full_env,
                                      timeout=self.timeout, check=False)
                out = Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out = Completed(tuple(argv), 127, "", str(exc))
        if check and out.returncode != 0:
            raise CommandFailed(argv, out.returncode, out.stderr or out.stdout)
        return out

    def _echoed(self, argv: Sequence[str], env: Mapping[str, str] | None) -> Completed:
        lines: list[str] = []
        with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                # enable-master prints the join command: the token's secret stays out of the journal and console
                print(f"  {jointoken.redact(line.rstrip())}", flush=True)
            code = proc.wait(timeout=self.timeout)
        text = "".join(lines)
        return Completed(tuple(argv), code, text, text)


def print_line(line: str) -> None:
    print(line, flush=True)


@dataclass
class Host:
    """The system first boot configures (see the module docstring)."""

    root: Path = Path("/")
    run: Runner = field(default_factory=SubprocessRunner)
    say: Callable[[str], None] = print_line
    live: bool = False
    sleep: Callable[[float], None] = time.sleep
    # How the role step runs pikube's own commands (enable-master, enable-worker).
    pikube: tuple[str, ...] = (sys.executable, "-m", "pikube")

    def path(self, absolute: str) -> Path:
        """`absolute` (a path on the board) under this host's root."""
        return self.root / absolute.lstrip("/")

    def exists(self, absolute: str) -> bool:
        return self.path(absolute).exists()


def write_file(path: Path, content: str | bytes, mode: int = 0o644, *, uid: int | None = None,
               gid: int | None = None) -> bool:
    """Make `path` hold `content` with `mode` (and owner); False when it already did, True when it was written."""
    data = content.encode() if isinstance(content, str) else content
    try:
        st = path.lstat()
        same = (path.is_file() and not path.is_symlink() and path.read_bytes() == data
                and (st.st_mode & 0o7777) == mode and (uid is None or st.st_uid == uid)
                and (gid is None or st.st_gid == gid))
    except FileNotFoundError:
        same = False
    if same:
        return False
    fsutil.write_atomic(path, data, mode, make_parents=True, uid=uid, gid=gid)
    return True


def symlink(path: Path, target: str) -> bool:
    """Make `path` a symlink to `target`; False when it already was."""
    with contextlib.suppress(OSError):
        if os.readlink(path) == target:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, path)
    return True


def remove(path: Path) -> bool:
    """Remove `path` if present; True when something was removed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return ""
