"""The small state files pikube keeps (CA copy, node record, unit files, pid files, dev state, doctor fixes).

Each is written through `core.fsutil.write_atomic`: its mode is exact whatever
the umask, a failed write leaves the old file and no temporary, and the writers
that skip an unchanged file still do.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent import credentials
from core import fsutil, processes
from pikube.bootstrap import init, record, supervisor
from pikube.bootstrap.init import InitKind
from pikube.bootstrap.record import NodeRecord, Role
from pikube.dev import state
from pikube.dev.naming import RunId
from pikube.dev.state import Phase, ProcessRecord, State
from pikube.doctor.host import RealHost

Write = Callable[[Path, str], Path]  # (directory, version) -> the file written


def _ca(d: Path, v: str) -> Path:
    credentials._write_ca(d, f"-----BEGIN CERTIFICATE-----\n{v}\n".encode())
    return credentials.ca_path(d)


def _record(d: Path, v: str) -> Path:
    path = d / "etc" / "pikube" / "node.json"
    record.save(path, NodeRecord(role=Role.WORKER, node_name=f"pi-{v}", server="https://10.0.0.1:6443",
                                 backend="host-gw", init=InitKind.NONE, data_dir="/var/lib/pikube",
                                 docker_host="unix:///var/run/docker.sock"))
    return path


def _unit(d: Path, v: str) -> Path:
    path = d / "units" / "pikube-agent.service"
    init._write_if_changed(path, f"[Service]\nExecStart=/bin/{v}\n")
    return path


def _pid_of(v: str) -> int:
    return 5_000_000 + sum(map(ord, v))  # above Linux's PID_MAX_LIMIT (2**22): never a live process


def _marker(name: str, v: str) -> str:
    """What in the file written by `WRITERS[name](…, v)` shows it is version `v`."""
    return f"{_pid_of(v)}\n" if name == "pid" else v


def _pid(d: Path, v: str) -> Path:
    path = d / "supervisor.pid"
    supervisor._write_pid(path, _pid_of(v))  # no such process: the file holds the pid alone
    return path


def _dev_state(d: Path, v: str) -> Path:
    proc = ProcessRecord(board="master", name=v, pid=7, argv=("sleep", "1"), log="/x/m.log")
    state.save(d, State(run=RunId("abcdef"), phase=Phase.UP, workers=1, processes=(proc,)))
    return state.state_file(d)


def _doctor(d: Path, v: str) -> Path:
    path = d / "etc" / "sysctl.d" / "90-pikube.conf"
    RealHost().write_text(str(path), f"net.ipv4.ip_forward = 1 # {v}\n")
    return path


WRITERS: dict[str, Write] = {"ca": _ca, "record": _record, "unit": _unit, "pid": _pid, "dev-state": _dev_state,
                             "doctor": _doctor}


@pytest.fixture
def umask077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.usefixtures("umask077")
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_public_state_files_are_0644_whatever_the_umask(tmp_path: Path, name: str) -> None:
    """None of these holds a secret, and other users (`pikube info`, a container's CA) read them."""
    path = WRITERS[name](tmp_path, "one")
    assert _mode(path) == 0o644
    assert _marker(name, "one") in path.read_text()
    path = WRITERS[name](tmp_path, "two")
    assert _mode(path) == 0o644 and _marker(name, "two") in path.read_text()
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = WRITERS[name](tmp_path, "old")
    before = path.read_bytes()

    def full(fd: int, data: bytes) -> None:
        os.write(fd, data[:3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil, "_write_all", full)
    with pytest.raises(OSError, match="No space"):
        WRITERS[name](tmp_path, "new")
    assert path.read_bytes() == before
    assert _temps(tmp_path) == []


def test_an_unchanged_ca_or_unit_file_is_not_rewritten(tmp_path: Path) -> None:
    ca = _ca(tmp_path, "same")
    inode = os.stat(ca).st_ino
    assert _ca(tmp_path, "same") == ca and os.stat(ca).st_ino == inode
    unit = tmp_path / "x.service"
    assert init._write_if_changed(unit, "[Service]\n") is True
    inode = os.stat(unit).st_ino
    assert init._write_if_changed(unit, "[Service]\n") is False and os.stat(unit).st_ino == inode
    assert init._write_if_changed(unit, "[Service]\nX=1\n") is True and os.stat(unit).st_ino != inode


def test_pid_file_content(tmp_path: Path) -> None:
    """A pid file names a live process by its pid and start time (which survive its exec), nothing for a gone one."""
    path = tmp_path / "a.service.pid"
    supervisor._write_pid(path, os.getpid())
    assert path.read_text() == f"{os.getpid()}\nstart={processes.start_time(os.getpid())}\n"
    gone = subprocess.Popen(["true"])
    gone.wait()
    supervisor._write_pid(path, gone.pid)
    assert path.read_text() == f"{gone.pid}\n"


@pytest.mark.parametrize("mode", [0o600, 0o755, 0o640])
def test_doctor_keeps_the_mode_and_owner_of_the_file_it_fixes(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "cmdline.txt"
    path.write_text("console=tty1\n")
    os.chmod(path, mode)
    owner = (os.getuid() + 1, os.getgid() + 1) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        os.chown(path, *owner)
    RealHost().write_text(str(path), "console=tty1 cgroup_enable=memory\n")
    st = os.stat(path)
    assert path.read_text() == "console=tty1 cgroup_enable=memory\n"
    assert stat.S_IMODE(st.st_mode) == mode and (st.st_uid, st.st_gid) == owner
