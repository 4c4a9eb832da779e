"""A real master (as a subprocess, with test timings) plus simulated boards joined with a token."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.jointoken import ca_hash
from core.kubeconfig import read_kubeconfig
from master.tokens import TokenStore
from pikube.dev.localmaster import spawn_master
from pikube.sim import Api, BoardSpec, Credentials, Fleet
from pikube.sim.api import resource_path
from tests.master.conftest import RunningMaster, free_port, kubectl
from tests.master.controllers.direct import Harness, harness

# Fast timings so the suite stays short; one test runs the defaults on purpose.
FAST = {"node_monitor_grace_seconds": 4.0, "node_monitor_period_seconds": 0.5, "job_backoff_seconds": 0.2,
        "scheduler_retry_seconds": 5.0, "controller_resync_seconds": 30.0}
FAST_BOARD = BoardSpec(name="pi", lease_seconds=1.0, status_seconds=30.0, start_delay=0.1, restart_delay=0.2)


def start_master_with(data_dir: Path, settings: dict[str, Any]) -> RunningMaster:
    """A master with `settings` overriding MasterSettings (through tests/master/controllers/launch.py)."""
    port = free_port()
    return spawn_master([sys.executable, "-m", "tests.master.controllers.launch", "--data-dir", str(data_dir),
                         "--port", str(port), "--settings", json.dumps(settings)], data_dir, port)


@dataclass
class Cluster:
    master: RunningMaster
    token: str
    fleet: Fleet
    admin: Api
    namespaces: list[str] = field(default_factory=list)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return kubectl(self.master, "new", *args, check=check, input=input)

    def namespace(self, name: str) -> str:
        self.admin.create(resource_path("v1", "namespaces"), {"metadata": {"name": name}})
        self.namespaces.append(name)
        return name

    def pods(self, ns: str, selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        items: list[dict[str, Any]] = self.admin.get(resource_path("v1", "pods", ns), params).get("items") or []
        return items

    def get(self, api_version: str, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        from core import errors
        try:
            return self.admin.get(resource_path(api_version, plural, ns, name))
        except errors.NotFound:
            return None


def make_cluster(tmp: Path, settings: dict[str, Any] | None = None, board: BoardSpec = FAST_BOARD) -> Cluster:
    m = start_master_with(tmp / "data", {**FAST, **(settings or {})})
    ca_pem = m.ca.read_bytes()
    token = TokenStore(m.data_dir / "tokens.json", ca_hash(ca_pem)).create(3600, "tests")
    cfg = read_kubeconfig(m.kubeconfig)
    admin = Api(Credentials(m.url, ca_pem, cfg.cert_pem or b"", cfg.key_pem or b""))
    return Cluster(m, token, Fleet(m.url, token, board), admin)


def stop_cluster(c: Cluster) -> None:
    c.fleet.halt_all()
    c.admin.close()
    c.master.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One master and three boards, shared by a module's tests (each test works in its own namespace)."""
    c = make_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        for _ in range(3):
            c.fleet.add()
        yield c
    finally:
        stop_cluster(c)


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition", every: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


# --- the direct harness (tests/master/controllers/direct.py): one store, syncs called by hand ----------------
@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path) as built:
        yield built


@pytest.fixture
def events(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """The events the harness's controllers record, as (type, reason, message), instead of writing them."""
    seen: list[tuple[str, str, str]] = []
    monkeypatch.setattr(h.env.recorder, "event", lambda obj, type_, reason, message, component="", field_path="":
                        seen.append((type_, reason, message)))
    return seen
