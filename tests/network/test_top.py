"""`kubectl top` on three real agents: usage sampled from the containers' cgroups and the boards' /proc.

A pod burning a core, an idle one and one holding a known amount of memory in tmpfs, on worker boards; the
figures kubectl 1.33 and 1.20 print are checked against what those pods do.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.kube.quantity import bytes_value, cpu_millis
from tests.master.conftest import kubectl_path
from tests.network.conftest import BOARDS, NetCluster, kubectl_cluster, wait_for

pytestmark = pytest.mark.integration
FILL_MI = 48


@pytest.fixture(scope="module")
def top_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
                dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with kubectl_cluster(tmp_path_factory.mktemp("top"), docker_engine, docker_client, dev_images) as pair:
        yield pair


def kubectl(config: Path, which: str, *args: str) -> str:
    proc = subprocess.run([kubectl_path(which), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          timeout=60, env={"HOME": str(config.parent), "PATH": "/usr/bin:/bin"})
    if proc.returncode != 0:
        return ""
    return proc.stdout


def rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}


def test_top_reports_what_the_pods_do(top_cluster: tuple[NetCluster, Path]) -> None:
    c, config = top_cluster
    started = time.monotonic()
    c.create_pod("burner", "b2", {"app": "burner"}, command=["sh", "-c", "while :; do :; done"])
    c.create_pod("idle", "b3", {"app": "idle"}, command=["sleep", "3600"])
    c.create_pod("filler", "b3", {"app": "filler"},
                 command=["sh", "-c", f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={FILL_MI}; exec sleep 3600"])

    def nodes_listed() -> dict[str, list[str]] | None:
        found = rows(kubectl(config, "new", "top", "nodes", "--no-headers"))
        ok = set(found) == {c.node(b) for b in BOARDS} and all(
            len(r) == 5 and r[1] != "<unknown>" and cpu_millis(r[1]) > 0 and bytes_value(r[3]) > 0
            for r in found.values())
        return found if ok else None

    wait_for("every board in kubectl top nodes", nodes_listed, 45, 1)
    print(f"kubectl top nodes lists every board {time.monotonic() - started:.0f} s after the pods were made")

    def pods_listed() -> dict[str, list[str]] | None:
        found = rows(kubectl(config, "new", "top", "pods", "--no-headers"))
        return found if {"burner", "idle", "filler"} <= set(found) else None

    wait_for("the three pods in kubectl top pods", pods_listed, 45, 1)
    # The burner's CPU as Docker counts it between two of the agent's samples, against what the second sample
    # says: a busy loop gets a whole core unless the machine is short of cores (other work beside this test), so
    # the check is that top reports what the container got — and at least 800m whenever it got most of a core.
    burner = c.docker.api.containers(filters={"label": ["io.kubernetes.pod.name=burner",
                                                         "pikube.io/kind=app"]})[0]["Id"]

    def docker_ns() -> int:
        return int(c.docker.api.stats(burner, stream=False, one_shot=True)["cpu_stats"]["cpu_usage"]["total_usage"])

    def sample_time() -> str:
        return str((c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner") or {}).get("timestamp", ""))

    first = wait_for("a sample of the burner", lambda: sample_time() or None, 30, 0.2)
    t0, n0 = time.monotonic(), docker_ns()
    wait_for("the next sample", lambda: sample_time() not in ("", first), 30, 0.2)
    got = (docker_ns() - n0) / (time.monotonic() - t0) / 1e6  # millicores
    metrics = c.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner") or {}
    reported = cpu_millis(metrics["containers"][0]["usage"]["cpu"])
    print(f"burner: {got:.0f}m by Docker's count, {reported}m in the agent's sample of the same window")
    assert abs(reported - got) <= max(100, 0.2 * got), (reported, got)
    found = pods_listed() or {}
    if got >= 900:
        assert cpu_millis(found["burner"][1]) >= 800, found["burner"]
    assert cpu_millis(found["idle"][1]) < 50, found["idle"]
    filled = bytes_value(found["filler"][2]) / (1024 * 1024)
    assert abs(filled - FILL_MI) <= FILL_MI * 0.1, f"filler's working set {filled:.1f} Mi, {FILL_MI} Mi written"
    # kubectl 1.20 reads the same API.
    old = rows(kubectl(config, "old", "top", "pods", "--no-headers"))
    assert {"burner", "idle", "filler"} <= set(old)
    assert set(rows(kubectl(config, "old", "top", "nodes", "--no-headers"))) == {c.node(b) for b in BOARDS}
    for name in ("burner", "idle", "filler"):
        c.delete_pod(name, wait=False)
