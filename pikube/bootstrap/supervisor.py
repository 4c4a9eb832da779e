"""A small service supervisor for boards without systemd (`--init none`: the dev cluster, tests, containers).

`pikube supervise --units-dir U --log-dir L` runs every `U/*.service` unit
file (the same files systemd would get), appends each one's output to
`L/<unit>.log`, and restarts a process that exits after the unit's
`RestartSec` (`Restart=always`, no start limit: a board should keep trying).
It waits on a self-pipe woken by signals, so an idle supervisor costs no CPU:

- SIGCHLD: reap, schedule the restart;
- SIGHUP: rescan `U`: start new units, restart changed ones, stop removed ones;
  with no unit left it exits;
- SIGTERM / SIGINT: stop every child (SIGTERM, SIGKILL after `TimeoutStopSec`)
  and exit, as a shutdown would.

`U/supervisor.pid` names the supervisor and `U/<unit>.pid` each running
child; a lock keeps a second supervisor off the same directory. Children a
killed supervisor left behind are stopped when the next one starts, so a
supervisor started at boot (or by hand after a crash) never runs a service twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from core import processes
from core.fsutil import write_atomic
from pikube.bootstrap.units import Unit, parse

PIDFILE = "supervisor.pid"
LOCKFILE = ".supervisor.lock"
MAX_LOG_BYTES = 10 * 1024 * 1024


def log_path(log_dir: Path, unit_name: str) -> Path:
    return log_dir / f"{unit_name.removesuffix('.service')}.log"


def _child_pidfile(units_dir: Path, name: str) -> Path:
    return units_dir / f"{name}.pid"


def _read_pid(path: Path) -> int | None:
    """The pid in `path` while that process runs. A later line, if any, is `start=<ticks>` (the process's
    start time) or, as older files have it, its argv (\0-separated): checked so that a reused pid is never
    taken for the process that wrote the file. The start time also holds for a unit whose program
    replaces itself (`pikube etcd` becomes etcd), whose command line changes."""
    try:
        first, _, rest = path.read_text().partition("\n")
        pid = int(first)
    except (OSError, ValueError):
        return None
    if not processes.alive(pid):
        return None
    rest = rest.strip("\n")
    if rest.startswith("start="):
        return pid if rest == f"start={processes.start_time(pid)}" else None
    want = [arg for arg in rest.split("\0") if arg]
    if want and processes.cmdline(pid) != want:
        return None
    return pid


def running_pid(units_dir: Path) -> int | None:
    """The pid of the supervisor running `units_dir`, if one runs."""
    pid = _read_pid(units_dir / PIDFILE)
    if pid is None:
        return None
    argv = processes.cmdline(pid)
    return pid if "supervise" in argv and str(units_dir) in argv else None


def child_pid(units_dir: Path, name: str) -> int | None:
    """The pid of the running process of unit `name`, if any."""
    return _read_pid(_child_pidfile(units_dir, name))


def stop(units_dir: Path, timeout: float = 45.0) -> bool:
    """Stop the supervisor of `units_dir` and its children; False if none was running."""
    pid = running_pid(units_dir)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    processes.wait_gone([pid], timeout)
    return True


def _write_pid(path: Path, pid: int) -> None:
    # Readable by all: `pikube info` and the CLI look for the supervisor without being root.
    started = processes.start_time(pid)
    write_atomic(path, f"{pid}\n" + (f"start={started}\n" if started is not None else ""), 0o644)


@dataclass
class _Child:
    unit: Unit
    text: str
    proc: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None


class Supervisor:
    """Runs the unit files of one directory until told to stop, or until none is left."""

    def __init__(self, units_dir: Path, log_dir: Path, say: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.units_dir = units_dir
        self.log_dir = log_dir
        self._say = say or (lambda line: print(f"{time.strftime('%F %T')} supervise: {line}", flush=True))
        self._clock = clock
        self._children: dict[str, _Child] = {}
        self._stopping = False
        self._rescan = True

    # -- signals ---------------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._rescan = True

    # -- main loop -------------------------------------------------------------------------------

    def run(self) -> int:
        self.units_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.units_dir / LOCKFILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._say(f"another supervisor already runs {self.units_dir}")
            os.close(lock)
            return 0
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        try:
            self._stop_leftovers()
            _write_pid(self.units_dir / PIDFILE, os.getpid())
            self._say(f"supervising {self.units_dir} (pid {os.getpid()})")
            self._loop(wake_r)
        finally:
            self._stop_all()
            with contextlib.suppress(FileNotFoundError):
                (self.units_dir / PIDFILE).unlink()
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            os.close(lock)
        return 0

    def _loop(self, wake: int) -> None:
        while not self._stopping:
            if self._rescan:
                self._rescan = False
                self._reload()
                if not self._children:
                    self._say("no units left; exiting")
                    return
            self._reap()
            now = self._clock()
            for name, child in self._children.items():
                if child.proc is None and child.restart_at is not None and child.restart_at <= now:
                    self._spawn(name, child)
            pending = [c.restart_at for c in self._children.values() if c.proc is None and c.restart_at is not None]
            timeout = max(0.0, min(pending) - self._clock()) if pending else None
            with contextlib.suppress(InterruptedError):
                select.select([wake], [], [], timeout)
            with contextlib.suppress(BlockingIOError):
                while os.read(wake, 512):
                    pass

    def _units(self) -> dict[str, tuple[Unit, str]]:
        found: dict[str, tuple[Unit, str]] = {}
        for path in sorted(self.units_dir.glob("*.service")):
            try:
                text = path.read_text()
                found[path.name] = (parse(path.name, text), text)
            except (OSError, ValueError) as exc:
                self._say(f"ignoring {path}: {exc}")
        return found

    def _reload(self) -> None:
        wanted = self._units()
        for name in [n for n, c in self._children.items() if n not in wanted or wanted[n][1] != c.text]:
            self._say(f"stopping {name} ({'changed' if name in wanted else 'removed'})")
            self._stop_child(self._children.pop(name))
        # Units another one is ordered after (After=) start later: the master before the agent.
        order = sorted(wanted, key=lambda n: (any(a in wanted for a in wanted[n][0].after), n))
        for name in order:
            if name not in self._children:
                unit, text = wanted[name]
                child = _Child(unit, text)
                self._children[name] = child
                self._spawn(name, child)

    def _spawn(self, name: str, child: _Child) -> None:
        child.restart_at = None
        out = self._open_log(name)
        try:
            child.proc = subprocess.Popen(list(child.unit.exec_start), stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, close_fds=True,
                                          env={**os.environ, **dict(child.unit.environment)})
        except OSError as exc:
            self._say(f"cannot start {name}: {exc}; retrying in {child.unit.restart_sec} s")
            child.restart_at = self._clock() + child.unit.restart_sec
            return
        finally:
            out.close()
        _write_pid(_child_pidfile(self.units_dir, name), child.proc.pid)
        self._say(f"started {name} (pid {child.proc.pid})")

    def _open_log(self, name: str) -> IO[bytes]:
        path = log_path(self.log_dir, name)
        with contextlib.suppress(OSError):
            if path.stat().st_size > MAX_LOG_BYTES:
                os.replace(path, path.with_suffix(".log.1"))
        return open(path, "ab")

    def _reap(self) -> None:
        for name, child in self._children.items():
            if child.proc is None or child.proc.poll() is None:
                continue
            code = child.proc.returncode
            child.proc = None
            with contextlib.suppress(FileNotFoundError):
                _child_pidfile(self.units_dir, name).unlink()
            child.restart_at = self._clock() + child.unit.restart_sec
            self._say(f"{name} exited with status {code}; restarting in {child.unit.restart_sec} s")

    def _stop_child(self, child: _Child) -> None:
        proc = child.proc
        child.proc = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(child.unit.stop_timeout_sec)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            _child_pidfile(self.units_dir, child.unit.name).unlink()

    def _stop_all(self) -> None:
        children = list(self._children.values())
        self._children.clear()
        for child in children:  # signal all first, then wait: a shutdown should not take the sum
            if child.proc is not None and child.proc.poll() is None:
                child.proc.terminate()
        for child in children:
            self._stop_child(child)

    def _stop_leftovers(self) -> None:
        """Stop the children of a supervisor that was killed (their pid files are still here)."""
        pids = []
        for path in self.units_dir.glob("*.service.pid"):
            pid = _read_pid(path)
            if pid is not None:
                pids.append(pid)
            path.unlink()
        if pids:
            self._say(f"stopping processes a previous supervisor left running: {pids}")
            processes.terminate(pids, timeout=30)
