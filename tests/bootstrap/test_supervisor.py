"""The supervisor `--init none` uses: starts unit files, restarts what dies, rescans, stops everything.

Real processes (a sleeping Python), no root: the supervisor is plain process management.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core import processes
from pikube.bootstrap import supervisor
from pikube.bootstrap.init import Supervised
from pikube.bootstrap.units import Unit

PIKUBE = (sys.executable, "-m", "pikube")


def _sleeper(name: str, marker: str) -> Unit:
    code = f"import time, os; print('up {marker}', os.environ.get('MALLOC_ARENA_MAX'), flush=True); time.sleep(300)"
    return Unit(name=name, description=name, exec_start=(sys.executable, "-c", code), restart_sec=1,
                stop_timeout_sec=5)


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervised]:
    s = Supervised(tmp_path / "units", tmp_path / "logs", PIKUBE)
    yield s
    s.stop_all()
    assert supervisor.running_pid(s.units_dir) is None


def test_starts_restarts_and_stops_units(sup: Supervised) -> None:
    sup.install(_sleeper("a.service", "a"))
    sup.start("a.service")
    first = supervisor.child_pid(sup.units_dir, "a.service")
    assert first is not None
    _wait(lambda: "up a 2" in supervisor.log_path(sup.log_dir, "a.service").read_text())  # environment given

    os.kill(first, signal.SIGKILL)  # dies: comes back after RestartSec
    _wait(lambda: supervisor.child_pid(sup.units_dir, "a.service") not in (None, first))

    sup.install(_sleeper("b.service", "b"))
    sup.start("b.service")  # a second unit is picked up by a rescan; the first keeps running
    assert sup.active("a.service") and sup.active("b.service")
    second = supervisor.child_pid(sup.units_dir, "a.service")

    sup.uninstall("b.service")
    assert not sup.active("b.service") and supervisor.child_pid(sup.units_dir, "a.service") == second

    boss = supervisor.running_pid(sup.units_dir)
    assert boss is not None
    sup.uninstall("a.service")  # no unit left: the supervisor exits
    assert processes.wait_gone([boss, second or 0], 10) == []


def test_a_changed_unit_is_restarted(sup: Supervised) -> None:
    sup.install(_sleeper("a.service", "one"))
    sup.start("a.service")
    before = supervisor.child_pid(sup.units_dir, "a.service")
    assert sup.install(_sleeper("a.service", "two")) is True
    assert sup.install(_sleeper("a.service", "two")) is False  # same text: nothing to do
    sup.start("a.service", restart=True)
    _wait(lambda: supervisor.child_pid(sup.units_dir, "a.service") not in (None, before))
    _wait(lambda: "up two" in supervisor.log_path(sup.log_dir, "a.service").read_text())


def test_stopping_the_supervisor_stops_its_children(sup: Supervised) -> None:
    sup.install(_sleeper("a.service", "a"))
    sup.start("a.service")
    child = supervisor.child_pid(sup.units_dir, "a.service")
    sup.stop_all()
    assert child is not None and processes.wait_gone([child], 5) == []
    assert sup.installed_text("a.service") is not None  # a shutdown keeps the units for the next boot


def test_a_new_supervisor_stops_what_a_killed_one_left_and_runs_each_unit_once(sup: Supervised) -> None:
    sup.install(_sleeper("a.service", "a"))
    sup.start("a.service")
    boss, child = supervisor.running_pid(sup.units_dir), supervisor.child_pid(sup.units_dir, "a.service")
    assert boss is not None and child is not None
    os.kill(boss, signal.SIGKILL)
    processes.wait_gone([boss], 5)
    assert processes.alive(child)  # orphaned, still running

    sup.start("a.service")  # what `pikube start` does at boot
    assert processes.wait_gone([child], 10) == []
    new_child = supervisor.child_pid(sup.units_dir, "a.service")
    assert new_child not in (None, child)
    assert [p for p in processes.pids_mentioning("up a") if p != new_child] == []


def test_a_second_supervisor_on_the_same_directory_steps_aside(sup: Supervised) -> None:
    sup.install(_sleeper("a.service", "a"))
    sup.start("a.service")
    assert supervisor.Supervisor(sup.units_dir, sup.log_dir, say=lambda _l: None).run() == 0
    assert sup.active("a.service")


def test_a_stale_pid_file_names_no_process(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / "a.service.pid").write_text(f"{os.getpid()}\n/not/this/process\n")
    assert supervisor.child_pid(units, "a.service") is None
    # Files name the process by its start time: a reused pid started later than the one written down.
    started = processes.start_time(os.getpid())
    assert started is not None
    (units / "a.service.pid").write_text(f"{os.getpid()}\nstart={started + 1}\n")
    assert supervisor.child_pid(units, "a.service") is None
    (units / "a.service.pid").write_text(f"{os.getpid()}\nstart={started}\n")
    assert supervisor.child_pid(units, "a.service") == os.getpid()
    (units / supervisor.PIDFILE).write_text(f"{os.getpid()}\n")
    assert supervisor.running_pid(units) is None  # alive, but not a supervisor of this directory
