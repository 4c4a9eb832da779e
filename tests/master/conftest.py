"""Fixtures that start a real `pikube master` over TLS and give tests kubectl and the Python client."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
KUBECTL_NEW = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
KUBECTL_OLD = str(ROOT / ".tools/bin/kubectl-1.20")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningMaster:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def ca(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    def session(self) -> requests.Session:
        """An admin HTTPS session using the kubeconfig's client certificate."""
        from pikube.kubeconfig import read_kubeconfig

        cfg = read_kubeconfig(self.kubeconfig)
        certdir = self.data_dir / "test-client"
        if not (certdir / "k.pem").exists():
            tmp = self.data_dir / f"test-client.{os.getpid()}.tmp"
            tmp.mkdir(exist_ok=True)
            (tmp / "c.pem").write_bytes(cfg.cert_pem or b"")
            (tmp / "k.pem").write_bytes(cfg.key_pem or b"")
            with contextlib.suppress(OSError):  # another session won the race: same content
                tmp.rename(certdir)
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override our CA
        s.verify = str(self.ca)
        s.cert = (str(certdir / "c.pem"), str(certdir / "k.pem"))
        return s

    def stop(self, sig: int = 15) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_master(data_dir: Path, port: int | None = None) -> RunningMaster:
    port = port or free_port()
    log_path = data_dir.parent / f"{data_dir.name}-master.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pikube.cli", "master", "--data-dir", str(data_dir), "--bind", "127.0.0.1",
         "--port", str(port), "--web-port", "0"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        # As the systemd unit runs it: fewer malloc arenas keep a threaded Python's RSS down.
        env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    m = RunningMaster(data_dir, port, proc, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"master exited: {log_path.read_text()[-3000:]}")
        try:
            if m.kubeconfig.exists() and requests.get(f"{m.url}/healthz", verify=str(m.ca), timeout=1).ok:
                return m
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    m.stop(9)
    raise RuntimeError(f"master did not become healthy: {log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMaster]:
    m = start_master(tmp_path_factory.mktemp("master") / "data")
    yield m
    m.stop()


def kubectl_path(which: str) -> str:
    path = KUBECTL_NEW if which == "new" else KUBECTL_OLD
    require(os.path.exists(path), f"kubectl {which} not found at {path} (run scripts/install-deps.sh)")
    return path


def kubectl(master: RunningMaster, which: str, *args: str, input: str | None = None,
            check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [kubectl_path(which), "--kubeconfig", str(master.kubeconfig), *args]
    full_env = {**os.environ, "HOME": str(master.data_dir), **(env or {})}
    full_env.pop("KUBECONFIG", None)
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def have_kubectl() -> bool:
    return shutil.which("kubectl") is not None
