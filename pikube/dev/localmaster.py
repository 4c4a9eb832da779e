"""A `pikube master` on loopback in a child process, for benchmarks and tests.

Benchmarks under `bench/` and the test suite both need a real master over TLS
that they start and stop themselves; this module is that launcher, so neither
imports the other. The master runs as its systemd unit runs it (fewer malloc
arenas) and logs to a file beside its data directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
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
        from core.kubeconfig import read_kubeconfig

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


def spawn_master(argv: list[str], data_dir: Path, port: int, host: str = "127.0.0.1", timeout: float = 30.0,
                 log_path: Path | None = None) -> RunningMaster:
    """Run `argv` (a master serving `data_dir` on `port`) and wait until `https://host:port/healthz` answers.

    The child runs from the source checkout when there is one, as its systemd
    unit runs it (fewer malloc arenas), logging to `log_path` (default: beside
    the data directory). A master that exits or stays unhealthy for `timeout`
    seconds is a RuntimeError carrying the end of its log.
    """
    log_path = log_path or data_dir.parent / f"{data_dir.name}-master.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    cwd = ROOT if (ROOT / "pikube").is_dir() else None  # a source checkout: run its code
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                # As the systemd unit runs it: fewer malloc arenas keep a threaded Python's RSS down.
                                env={**os.environ, "MALLOC_ARENA_MAX": "2"})
    m = RunningMaster(data_dir, port, proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"master exited: {log_path.read_text()[-3000:]}")
        try:
            if m.kubeconfig.exists() and requests.get(f"https://{host}:{port}/healthz", verify=str(m.ca),
                                                      timeout=1).ok:
                return m
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.1)
    m.stop(9)
    raise RuntimeError(f"master on {host}:{port} did not become healthy: {log_path.read_text()[-3000:]}")


def master_argv(data_dir: Path, port: int, bind: str = "127.0.0.1", *extra: str) -> list[str]:
    """`python -m pikube.cli master` for `data_dir` on `bind:port`, status page off unless `extra` says."""
    return [sys.executable, "-m", "pikube.cli", "master", "--data-dir", str(data_dir), "--bind", bind,
            "--port", str(port), "--web-port", "0", *extra]


def start_master(data_dir: Path, port: int | None = None, extra_args: tuple[str, ...] = ()) -> RunningMaster:
    """Start a master on 127.0.0.1 and wait until `/healthz` answers over TLS (30 s at most)."""
    port = port or free_port()
    return spawn_master(master_argv(data_dir, port, "127.0.0.1", *extra_args), data_dir, port)
