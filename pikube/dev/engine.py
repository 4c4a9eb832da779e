"""The Docker engine pods run in: `DOCKER_HOST` when given, else a private `dockerd`.

Pod networking is pikube's job, so a private engine runs with no bridge, no
iptables rules and no change to the host's forwarding setting; its socket, data
root, exec root, pid file and log all live under one directory, so that stopping
it and deleting that directory leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import processes
from pikube.dev.errors import DevError

# Unix socket paths must fit in sun_path (108 bytes with the NUL; Go allows 104); containerd's
# longest one under the exec root is `containerd/containerd.sock.ttrpc`. When the
# state directory is too deep for that, the sockets move to a short directory
# under /run named after it (see `runtime_dir`).
_LONGEST_SOCKET = "containerd/containerd.sock.ttrpc"
_SUN_PATH_MAX = 100  # the kernel allows 107; containerd (Go) refuses more than 104
RUNTIME_BASE = Path("/run/pikube-dev")


@dataclass(frozen=True)
class Engine:
    """A reachable Docker engine; `root` and `pid` are set when pikube started it."""

    host: str
    root: Path | None = None
    pid: int | None = None

    @property
    def started(self) -> bool:
        return self.root is not None

    def client(self, timeout: int = 60) -> Any:
        """A `docker.DockerClient` for this engine (the caller closes it)."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)


def _ping(host: str, timeout: int) -> str | None:
    """None when the engine at `host` answers, else why not."""
    import docker

    try:
        client = docker.DockerClient(base_url=host, timeout=timeout)
    except Exception as exc:
        return str(exc)
    try:
        client.ping()
    except Exception as exc:
        return str(exc)
    finally:
        client.close()
    return None


def connect(host: str, timeout: int = 5) -> Engine:
    """An engine someone else runs, at `host` (a `DOCKER_HOST` value)."""
    if _ping(host, timeout) is not None:
        raise DevError(
            f"no Docker engine answers at DOCKER_HOST={host}; start it, or unset DOCKER_HOST "
            "so pikube starts a private one."
        )
    return Engine(host=host)


def runtime_dir(root: Path) -> Path:
    """The short directory for sockets of an engine whose `root` is too deep for them."""
    digest = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:12]
    return RUNTIME_BASE / digest


def socket_path(root: Path) -> Path:
    path = root.absolute() / "docker.sock"
    return path if len(str(path)) <= _SUN_PATH_MAX else runtime_dir(root) / "docker.sock"


def exec_root(root: Path) -> Path:
    path = root.absolute() / "exec"
    return path if len(str(path / _LONGEST_SOCKET)) <= _SUN_PATH_MAX else runtime_dir(root) / "exec"


def pid_file(root: Path) -> Path:
    return root / "dockerd.pid"


def log_file(root: Path) -> Path:
    return root / "dockerd.log"


def dockerd_argv(root: Path, dockerd: str = "dockerd") -> list[str]:
    return [
        dockerd,
        "--host",
        f"unix://{socket_path(root)}",
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(exec_root(root)),
        "--pidfile",
        str(pid_file(root)),
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-forward=false",
        "--ip-masq=false",
    ]


def check_can_start(root: Path, dockerd: str = "dockerd") -> str:
    """The dockerd to run, or a DevError saying why a private engine cannot start in `root`."""
    found = shutil.which(dockerd)
    if found is None:
        raise DevError("dockerd is not installed; install Debian's docker.io (apt-get install docker.io).")
    return found


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "(no log output)"


def start(root: Path, timeout: float = 30.0, dockerd: str = "dockerd") -> Engine:
    """Start a private dockerd under `root` and wait until it answers."""
    binary = check_can_start(root, dockerd)
    root = root.absolute()
    root.mkdir(parents=True, exist_ok=True)
    socket_path(root).parent.mkdir(parents=True, exist_ok=True)
    host = f"unix://{socket_path(root)}"
    with open(log_file(root), "ab") as log:
        proc = subprocess.Popen(
            dockerd_argv(root, binary),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `pikube dev up`, and Ctrl-C in its terminal
        )
    engine = Engine(host=host, root=root, pid=proc.pid)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            _stop_failed(engine)
            raise DevError(f"dockerd exited at start ({_last_line(log_file(root))}); see {log_file(root)}.")
        if _ping(host, 2) is None:
            return engine
        if time.monotonic() >= deadline:
            _stop_failed(engine)
            raise DevError(f"dockerd did not answer within {timeout:.0f} seconds; see {log_file(root)}.")
        time.sleep(0.1)


def _stop_failed(engine: Engine) -> None:
    """Stop an engine that did not come up; keep its log for the error message, drop its sockets."""
    stop(engine)
    assert engine.root is not None
    shutil.rmtree(runtime_dir(engine.root), ignore_errors=True)
    with contextlib.suppress(OSError):
        RUNTIME_BASE.rmdir()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


# Programs an engine runs; other processes that merely mention its paths (a `tail -f` of
# its log, say) are not the engine's to stop.
_ENGINE_PROGRAMS = ("dockerd", "containerd", "docker-", "runc")


def _is_engine_program(pid: int) -> bool:
    argv = processes.cmdline(pid)
    return bool(argv) and Path(argv[0]).name.startswith(_ENGINE_PROGRAMS)


def leftover_processes(root: Path) -> list[int]:
    """Processes of the engine started under `root` (dockerd, containerd, shims) still running."""
    found: set[int] = set()
    for path in (root.absolute(), runtime_dir(root)):
        found.update(processes.pids_mentioning(f"{path}/"))
    return sorted(pid for pid in found if _is_engine_program(pid))


def _unmount_all(root: Path) -> None:
    for _attempt in range(3):
        mounts = leftover_mounts(root)
        if not mounts:
            return
        for mount_point in reversed(mounts):
            subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)


def leftover_mounts(root: Path) -> list[str]:
    """Mount points under an engine's directories (dockerd bind-mounts its data root)."""
    prefixes = (str(root.absolute()) + "/", str(runtime_dir(root)) + "/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point.startswith(prefixes):
                found.append(mount_point)
    return found


def stop(engine: Engine, timeout: float = 20.0) -> None:
    """Stop an engine pikube started (an external one is left alone); safe to repeat."""
    if engine.root is None:
        return
    root = engine.root
    pid = engine.pid if engine.pid is not None else _read_pid(pid_file(root))
    pids = []
    if pid is not None and any(str(pid_file(root)) in arg for arg in processes.cmdline(pid)):
        pids.append(pid)
    # dockerd first, so it stops its containers and containerd cleanly; then anything left.
    processes.terminate(pids, timeout)
    processes.terminate(leftover_processes(root), 5.0)
    _unmount_all(root)


def remove_files(root: Path) -> None:
    """Delete a stopped private engine's directory (images, containers, logs)."""
    _unmount_all(root)
    if leftover_mounts(root):
        raise DevError(f"{root} still has mounts, so it was not deleted; stop the engine first.")
    for path in (root, runtime_dir(root)):
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)
    with contextlib.suppress(OSError):  # shared by all runs; goes when the last one does
        RUNTIME_BASE.rmdir()
