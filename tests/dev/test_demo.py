"""What `make demo` promises, end to end: `pikube dev up` makes a whole cluster that real kubectl drives.

Three boards, each set up by the same enable-master / enable-worker a Pi runs;
a deployment created, exposed as a NodePort and scaled to 4 answers on the
NodePort of every board, from inside every board; deleting it removes it all.
Both pod network backends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.runtime.localimages import BUSYBOX_IMAGE
from pikube.dev import cluster
from pikube.dev.state import State
from tests.conftest import DevImages, HarnessMade
from tests.master.conftest import kubectl_path

PIKUBE = Path(sys.executable).parent / "pikube"
pytestmark = pytest.mark.integration


def _run(argv: list[str], timeout: float = 300, check: bool = True, docker_host: str = "",
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "SUDO_USER", "DOCKER_HOST")}
    if docker_host:
        env["DOCKER_HOST"] = docker_host  # the session's engine: the demo's pods run beside the tests'
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert not check or proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    return proc


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.5)


@pytest.mark.parametrize("backend", ["host-gw", "vxlan"])
def test_demo_cluster_runs_a_nodeport_service_on_every_board(
    backend: str, docker_engine: Any, dev_images: DevImages, harness_made: HarnessMade, tmp_path: Path
) -> None:
    state_dir = tmp_path / "demo"
    up = _run([str(PIKUBE), "dev", "up", "--workers", "2", "--backend", backend, "--state-dir", str(state_dir)],
              check=False, docker_host=docker_engine.host)
    recorded = json.loads((state_dir / "state.json").read_text()) if (state_dir / "state.json").exists() else {}
    if recorded:
        harness_made.runs.add(recorded["run"])
    kubeconfig = state_dir / "kubeconfig"

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([kubectl_path("new"), "--kubeconfig", str(kubeconfig), *args], 60, check)

    def fetch(board: str, address: str, port: int) -> str:
        try:
            return _run([str(PIKUBE), "dev", "exec", board, "--state-dir", str(state_dir), "--",
                         "busybox", "wget", "-qO-", f"http://{address}:{port}/"], timeout=10, check=False).stdout
        except subprocess.TimeoutExpired:
            return ""

    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"kubectl --kubeconfig {kubeconfig} get nodes -o wide" in up.stdout
        boards = {b["name"]: b["address"] for b in recorded["lan"]["boards"]}

        nodes = kubectl("get", "nodes", "-o", "wide", "-L", "kubernetes.io/arch").stdout.splitlines()
        header = nodes[0].split()
        assert header[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and header[-1] == "ARCH"
        rows = {r.split()[0]: r.split() for r in nodes[1:]}
        assert set(rows) == {"master", "worker-1", "worker-2"}
        for name, row in rows.items():
            assert row[1] == "Ready" and row[2] == ("control-plane,master" if name == "master" else "worker")
            assert row[4].startswith("v1.") and row[5] == boards[name] and row[-1] == "amd64"

        kubectl("create", "deployment", "web", f"--image={BUSYBOX_IMAGE}", "--", "httpd", "-f", "-p", "80",
                "-h", "/var/www")
        kubectl("expose", "deployment", "web", "--port=80", "--type=NodePort")
        kubectl("scale", "deployment", "web", "--replicas=4")

        def running() -> bool:
            pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
            return len(pods) == 4 and all(p["status"].get("phase") == "Running" for p in pods)

        _until(running, 90, "4 web pods running")
        port = int(kubectl("get", "service", "web", "-o", "jsonpath={.spec.ports[0].nodePort}").stdout)
        for board in boards:
            for address in boards.values():
                _until(lambda b=board, a=address: fetch(b, a, port).strip() == "pikube busybox", 30,
                       f"NodePort {address}:{port} answering from board {board}")

        kubectl("delete", "service,deployment", "web")
        _until(lambda: kubectl("get", "pods,services,endpoints", "-l", "app=web", "-o", "name").stdout == ""
               and "web" not in kubectl("get", "services,endpoints", "-o", "name").stdout, 60, "web gone")
        assert fetch("worker-1", boards["master"], port) == ""  # the NodePort is closed on every board
    finally:
        down = _run([str(PIKUBE), "dev", "down", "--state-dir", str(state_dir)], check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert cluster.leftovers(State.from_json(json.dumps(recorded))) == []
    assert docker_engine.client().containers.list(all=True, filters={"label": "pikube.io/node=worker-1"}) == []


def test_dev_up_with_three_masters_on_etcd(docker_engine: Any, dev_images: DevImages, harness_made: HarnessMade,
                                           tmp_path: Path) -> None:
    """`pikube dev up --masters 3`: the first master starts the cluster on etcd, the others join it; every master
    serves the API, the three etcd members vote, and `dev down` leaves nothing (etcd processes included)."""
    from tests.conftest import require

    require(shutil.which("etcd") is not None, "etcd is not installed (Debian's etcd-server)")
    state_dir = tmp_path / "ha"
    up = _run([str(PIKUBE), "dev", "up", "--masters", "3", "--workers", "1", "--state-dir", str(state_dir)],
              check=False, docker_host=docker_engine.host)
    recorded = json.loads((state_dir / "state.json").read_text()) if (state_dir / "state.json").exists() else {}
    if recorded:
        harness_made.runs.add(recorded["run"])
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "enable-master --join on board master-3" in up.stdout
        kubeconfig = state_dir / "kubeconfig"
        floating = f"https://{recorded['lan']['subnet'].rsplit('.', 1)[0]}.250:6443"
        assert f"the masters answer at their floating address {floating}" in up.stdout
        assert f"server: {floating}" in kubeconfig.read_text()  # kubectl below goes through it
        nodes = _run([kubectl_path("new"), "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "name"], 60)
        assert nodes.stdout.split() == ["node/master", "node/master-2", "node/master-3", "node/worker-1"]
        for board in ("master-2", "master-3"):  # each master answers with its own admin kubeconfig
            own = state_dir / "boards" / board / "config" / "admin.kubeconfig"
            store = _run([kubectl_path("new"), "--kubeconfig", str(own), "get", "--raw", "/pikube/v1/datastore"], 60)
            health = json.loads(store.stdout)
            assert sorted((m["name"], m["healthy"], m["learner"]) for m in health["members"]) == [
                ("master", True, False), ("master-2", True, False), ("master-3", True, False)]
        bad = _run([str(PIKUBE), "dev", "up", "--masters", "2", "--state-dir", str(tmp_path / "even")], check=False)
        assert bad.returncode == 1 and "--masters must be 1, 3, 5 or 7, not 2" in bad.stderr
    finally:
        down = _run([str(PIKUBE), "dev", "down", "--state-dir", str(state_dir)], check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert cluster.leftovers(State.from_json(json.dumps(recorded))) == []
    assert not [p for p in _etcd_processes() if str(state_dir) in " ".join(p)]


def _etcd_processes() -> list[list[str]]:
    from core import processes

    return [processes.cmdline(p) for p in processes.pids_mentioning("etcd")]
