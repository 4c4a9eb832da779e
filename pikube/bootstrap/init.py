"""Installing, starting and stopping a board's services: systemd, or pikube's supervisor without it.

Both take the same unit files (`units.render`). `Systemd` puts them in
`/etc/systemd/system` and drives `systemctl` through a runner (tests pass a
fake). `Supervised` keeps them in the config dir and runs `pikube supervise`
detached, which starts every unit file it finds there and restarts what dies;
it rescans on SIGHUP, stops everything on SIGTERM and exits when the directory
holds no unit any more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from core.fsutil import write_atomic
from pikube.bootstrap import supervisor
from pikube.bootstrap.units import Unit, render

Runner = Callable[[Sequence[str]], tuple[int, str]]


class InitKind(StrEnum):
    SYSTEMD = "systemd"
    NONE = "none"


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run `argv`; its exit status and combined output (127 when the program is missing)."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(argv)}: timed out"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


class Init(Protocol):
    """What the bootstrap needs of a service manager."""

    kind: InitKind

    def installed_text(self, name: str) -> str | None: ...

    def install(self, unit: Unit) -> bool: ...

    def start(self, name: str, restart: bool = False) -> None: ...

    def active(self, name: str) -> bool: ...

    def uninstall(self, name: str) -> None: ...

    def log_hint(self, name: str) -> str: ...


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, text, 0o644, make_parents=True)
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


class InitError(Exception):
    """The service manager refused; the message has its words."""


class Systemd:
    """Unit files in `unit_dir` (normally /etc/systemd/system), driven with systemctl."""

    kind = InitKind.SYSTEMD

    def __init__(self, unit_dir: Path, run: Runner = run_command) -> None:
        self.unit_dir = unit_dir
        self._run = run

    def _systemctl(self, *args: str) -> None:
        code, out = self._run(["systemctl", *args])
        if code != 0:
            raise InitError(f"systemctl {' '.join(args)} failed: {out or f'exit status {code}'}")

    def installed_text(self, name: str) -> str | None:
        return _read(self.unit_dir / name)

    def install(self, unit: Unit) -> bool:
        changed = _write_if_changed(self.unit_dir / unit.name, render(unit))
        if changed:
            self._systemctl("daemon-reload")
        return changed

    def start(self, name: str, restart: bool = False) -> None:
        # `install` reloaded systemd when the file changed, so enabling needs no second reload (systemctl
        # enable reloads by default: under a board's first boot each reload costs seconds); one call
        # enables and starts.
        if restart:
            self._systemctl("enable", "--no-reload", name)
            self._systemctl("restart", name)
        else:
            self._systemctl("enable", "--no-reload", "--now", name)

    def active(self, name: str) -> bool:
        return self._run(["systemctl", "is-active", "--quiet", name])[0] == 0

    def uninstall(self, name: str) -> None:
        path = self.unit_dir / name
        if not path.exists():
            return
        self._run(["systemctl", "disable", "--now", name])  # a unit that is already stopped is fine
        path.unlink()
        self._systemctl("daemon-reload")

    def log_hint(self, name: str) -> str:
        return f"journalctl -u {name}"


class Supervised:
    """Unit files in `units_dir`, run by a detached `pikube supervise` (for machines without systemd)."""

    kind = InitKind.NONE

    def __init__(self, units_dir: Path, log_dir: Path, pikube: Sequence[str], wait: float = 10.0) -> None:
        self.units_dir = units_dir
        self.log_dir = log_dir
        # How to run pikube: e.g. [sys.executable, "-m", "pikube"].
        self.pikube = tuple(pikube)
        self.wait = wait

    def installed_text(self, name: str) -> str | None:
        return _read(self.units_dir / name)

    def install(self, unit: Unit) -> bool:
        return _write_if_changed(self.units_dir / unit.name, render(unit))

    def supervisor_argv(self) -> list[str]:
        return [*self.pikube, "supervise", "--units-dir", str(self.units_dir), "--log-dir", str(self.log_dir)]

    def start(self, name: str, restart: bool = False) -> None:
        # A changed unit file is restarted by the supervisor's rescan, so `restart` needs nothing more.
        pid = supervisor.running_pid(self.units_dir)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_dir / "supervisor.log", "ab") as out:
                subprocess.Popen(self.supervisor_argv(), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        deadline = time.monotonic() + self.wait
        while not self.active(name):
            if time.monotonic() > deadline:
                raise InitError(f"the supervisor did not start {name} within {self.wait:.0f} s; "
                                f"see {self.log_dir / 'supervisor.log'}")
            time.sleep(0.05)

    def active(self, name: str) -> bool:
        return supervisor.running_pid(self.units_dir) is not None and supervisor.child_pid(self.units_dir,
                                                                                            name) is not None

    def uninstall(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.units_dir / name).unlink()
        pid = supervisor.running_pid(self.units_dir)
        if pid is None:
            return
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 40
        while supervisor.child_pid(self.units_dir, name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop_all(self) -> None:
        """Stop the supervisor and everything it runs (unit files stay): what a shutdown does."""
        supervisor.stop(self.units_dir)

    def log_hint(self, name: str) -> str:
        return str(supervisor.log_path(self.log_dir, name))
