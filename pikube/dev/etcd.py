"""A real etcd (Debian's `etcd-server`) on loopback, for tests and the dev cluster's several masters.

One member per call (or a cluster of several with `start_etcd_cluster`),
listening on free loopback ports, its data in a directory the caller owns;
`stop` ends the process and waits for it. Nothing here runs
on a board: masters there run etcd under their own supervision.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from pikube.dev.localmaster import free_port


class EtcdMissing(RuntimeError):
    """etcd is not installed."""


@dataclass
class RunningEtcd:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    argv: list[str]

    def restart(self, timeout: float = 30.0) -> None:
        """Start the stopped member again on its data (it rejoins its cluster)."""
        self.stop()
        with (self.data_dir.parent / f"{self.name}.etcd.log").open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        _wait_healthy(self, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        raise EtcdMissing("etcd is not installed (Debian: apt-get install etcd-server)")
    return found


def start_etcd(data_dir: Path, name: str = "default", timeout: float = 20.0, extra: Sequence[str] = ()) -> RunningEtcd:
    """One etcd member on 127.0.0.1, ready (its /health says so) or RuntimeError with its log's tail; `extra`:
    more etcd flags (e.g. a small `--quota-backend-bytes`)."""
    peer = f"http://127.0.0.1:{free_port()}"
    running = _spawn(data_dir, name, peer, f"{name}={peer}", extra)
    _wait_healthy(running, timeout)
    return running


def start_etcd_cluster(base: Path, members: int = 3, timeout: float = 30.0) -> list[RunningEtcd]:
    """`members` etcd members on 127.0.0.1 forming one cluster (`m0`, `m1` …), each under `base/<name>`."""
    names = [f"m{i}" for i in range(members)]
    peers = {n: f"http://127.0.0.1:{free_port()}" for n in names}
    initial = ",".join(f"{n}={peers[n]}" for n in names)
    running = [_spawn(base / n, n, peers[n], initial) for n in names]
    try:
        for member in running:
            _wait_healthy(member, timeout)
    except RuntimeError:
        for member in running:
            member.stop()
        raise
    return running


def _spawn(data_dir: Path, name: str, peer: str, initial_cluster: str, extra: Sequence[str] = ()) -> RunningEtcd:
    binary = etcd_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    client = f"http://127.0.0.1:{free_port()}"
    argv = [binary, "--name", name, "--data-dir", str(data_dir / "member-data"), "--listen-client-urls", client,
            "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", "new", "--log-level", "warn",
            "--logger", "zap", *extra]
    with (data_dir.parent / f"{name}.etcd.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    return RunningEtcd(name, client, peer, data_dir, proc, argv)


def _wait_healthy(running: RunningEtcd, timeout: float) -> None:
    proc, client, name, data_dir = running.proc, running.client_url, running.name, running.data_dir
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(f"{client}/health", timeout=1).json().get("health") == "true":
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    running.stop()
    tail = (data_dir.parent / f"{name}.etcd.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"etcd did not become healthy within {timeout:.0f} s:\n{tail}")
