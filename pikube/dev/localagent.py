"""A real `pikube agent` in a child process, joined to a master that a test or benchmark started itself.

The agent tests and the pod-start and network benchmarks all run the agent as a
board does (`python -m pikube.cli agent ...`), with a join token made on the
master's data directory, and clean up the containers and volumes it left in
the Docker engine. This module is that launcher, so `bench/` need not import
the test suite; it starts the master-side CLI (`pikube token create`) rather
than importing `master`, which the shared package must not depend on.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import wellknown
from pikube.bootstrap.layout import Layout
from pikube.dev.localmaster import ROOT, RunningMaster, free_port

NODE_LABEL = wellknown.NODE_LABEL


def checkout_dir() -> Path | None:
    """The working directory for a child `python -m pikube.cli`: a source checkout, to run its own code
    (as `localmaster` does), else None."""
    return ROOT if (ROOT / "pikube").is_dir() else None


@dataclass
class AgentProcess:
    """One agent process: `argv` as given, its output appended to `log_path`."""

    node: str
    data_dir: Path
    log_path: Path
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=checkout_dir())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send `sig` and wait up to 10 s, then SIGKILL; nothing when it is not running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"the agent of {self.node} was never started")
        return self.proc.pid

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def make_token(master: RunningMaster, description: str = "pikube.dev", ttl: str = "1h") -> str:
    """A join token for `master`, made by `pikube token create` on its data directory.

    The CLI finds a master's data as `<data dir>/master`, so the master must have been
    started with a data directory named `master` (as every caller here does).
    """
    data_dir = master.data_dir.parent
    if Layout(data_dir=data_dir).master_data != master.data_dir:
        raise ValueError(f"`pikube token` looks for a master's data in {Layout(data_dir=data_dir).master_data}, "
                         f"not {master.data_dir}: start the master with a data directory named 'master'")
    # An empty config dir: no bootstrap record, so the token is the only line printed.
    with tempfile.TemporaryDirectory(prefix="pikube-token-") as config_dir:
        proc = subprocess.run(
            [sys.executable, "-m", "pikube.cli", "token", "--config-dir", config_dir, "--data-dir", str(data_dir),
             "create", "--ttl", ttl, "--description", description],
            capture_output=True, text=True, timeout=60, cwd=checkout_dir())
    lines = proc.stdout.split()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"pikube token create exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return lines[0]


def agent_argv(master: RunningMaster, node: str, data_dir: Path, docker_host: str, token: str,
               extra: list[str] | None = None, log_level: str = "info") -> list[str]:
    """`pikube agent` on loopback against `master`, logs served on a free loopback port; `extra` appended."""
    return [sys.executable, "-m", "pikube.cli", "agent", "--server", master.url, "--token", token,
            "--node-name", node, "--data-dir", str(data_dir), "--docker-host", docker_host,
            "--node-ip", "127.0.0.1", "--log-bind", "127.0.0.1", "--log-port", str(free_port()),
            "--log-level", log_level, *(extra or [])]


def remove_node_containers(docker: Any, node: str) -> None:
    """Remove every container and volume labelled with `node` (after a run, whatever happened)."""
    for row in docker.api.containers(all=True, filters={"label": [f"{NODE_LABEL}={node}"]}):
        with contextlib.suppress(Exception):
            docker.api.remove_container(row["Id"], force=True, v=True)
    for vol in (docker.api.volumes(filters={"label": [f"{NODE_LABEL}={node}"]}) or {}).get("Volumes") or []:
        with contextlib.suppress(Exception):
            docker.api.remove_volume(vol["Name"], force=True)
