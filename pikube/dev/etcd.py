"""A real etcd (Debian's `etcd-server`) on loopback, for tests and the dev cluster's several masters.

One member per call, listening on free loopback ports, its data in a directory
the caller owns; `stop` ends the process and waits for it. Nothing here runs
on a board: masters there run etcd under their own supervision.
"""

from __future__ import annotations

import shutil
import subprocess
import time
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


def start_etcd(data_dir: Path, name: str = "default", timeout: float = 20.0) -> RunningEtcd:
    """One etcd member on 127.0.0.1, ready (its /health says so) or RuntimeError with its log's tail."""
    binary = etcd_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    client = f"http://127.0.0.1:{free_port()}"
    peer = f"http://127.0.0.1:{free_port()}"
    log = (data_dir.parent / f"{name}.etcd.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--name", name, "--data-dir", str(data_dir / "member-data"), "--listen-client-urls", client,
         "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"{name}={peer}", "--initial-cluster-state", "new", "--log-level", "warn",
         "--logger", "zap"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    running = RunningEtcd(name, client, peer, data_dir, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(f"{client}/health", timeout=1).json().get("health") == "true":
                return running
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    running.stop()
    tail = (data_dir.parent / f"{name}.etcd.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"etcd did not become healthy within {timeout:.0f} s:\n{tail}")
