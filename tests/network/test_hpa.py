"""`kubectl autoscale` on real agents: a CPU-burning Deployment scales up to its maximum, and back down once idle.

The pods burn CPU while a file exists in a hostPath directory the test owns
(every board's pods see the same directory), so the test turns the load on and
off for all replicas at once. Usage flows as in production: the agents sample
their containers' cgroups every 15 s and report to the master; the autoscaler
reads those reports. kubectl 1.20 creates the autoscaler (autoscaling/v1),
kubectl 1.33 shortens the scale-down window through the HPA's own `behavior`
(autoscaling/v2) and reads the events with `describe`. The master evaluates
autoscalers every 5 s (`--horizontal-pod-autoscaler-sync-period`, an operator
flag) instead of 15 s, to keep the test short.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.master.conftest import kubectl_path
from tests.network.conftest import NetCluster, cluster_up, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hpa_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
                dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with cluster_up("host-gw", tmp_path_factory.mktemp("hpa"), docker_engine.host, docker_client, dev_images,
                    master_flags=lambda lan: ["--horizontal-pod-autoscaler-sync-period", "5s"]) as c:
        config = c.workdir / "kubeconfig"
        config.write_text(re.sub(r"server: https://\S+", f"server: {c.url}", c.master.kubeconfig.read_text()))
        yield c, config


def kubectl(config: Path, which: str, *args: str, input: str | None = None) -> str:
    proc = subprocess.run([kubectl_path(which), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          timeout=60, env={"HOME": str(config.parent), "PATH": "/usr/bin:/bin"}, input=input)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def burner(image: str, load_dir: Path) -> dict[str, Any]:
    # Busy while /load/on exists, else asleep: a shell loop, no test-side timing involved.
    script = ("while :; do if [ -e /load/on ]; then i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; "
              "else sleep 1; fi; done")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burn", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "burn"}}, "template": {
                "metadata": {"labels": {"app": "burn"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "burn", "image": image, "command": ["sh", "-c", script],
                                         "resources": {"requests": {"cpu": "20m"}, "limits": {"cpu": "100m"}},
                                         "volumeMounts": [{"name": "load", "mountPath": "/load"}]}],
                         "volumes": [{"name": "load", "hostPath": {"path": str(load_dir)}}]}}}}


def test_autoscale_follows_the_load_up_to_max_and_back_down(hpa_cluster: tuple[NetCluster, Path],
                                                           tmp_path: Path) -> None:
    c, config = hpa_cluster
    load = tmp_path / "load"
    load.mkdir()
    kubectl(config, "new", "apply", "-f", "-", input=json.dumps(burner(c.images.busybox, load)))
    kubectl(config, "old", "autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=4")
    kubectl(config, "new", "patch", "hpa", "burn", "--type=merge",
            "-p", '{"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}}}')

    def replicas() -> int:
        out = json.loads(kubectl(config, "new", "get", "deployment", "burn", "-o", "json"))
        return int(out["spec"]["replicas"])

    def hpa() -> dict[str, Any]:
        out: dict[str, Any] = json.loads(kubectl(config, "new", "get", "hpa", "burn", "-o", "json"))
        return out

    # Idle, the autoscaler measures and stays at 1.
    wait_for("the idle pod's usage measured", lambda: (hpa().get("status") or {}).get("currentMetrics"), 90, 1)
    assert replicas() == 1
    started = time.monotonic()
    (load / "on").touch()
    wait_for("the deployment scaled to 4", lambda: replicas() == 4, 120, 1)
    print(f"scaled up to 4 {time.monotonic() - started:.0f} s after the load started")
    status = hpa()["status"]
    assert status["desiredReplicas"] == 4 and status.get("lastScaleTime")
    described = kubectl(config, "new", "describe", "hpa", "burn")
    assert "SuccessfulRescale" in described and "New size: 4; reason: cpu resource utilization" in described

    stopped = time.monotonic()
    (load / "on").unlink()
    wait_for("the deployment back at 1", lambda: replicas() == 1, 120, 1)
    print(f"scaled down to 1 {time.monotonic() - stopped:.0f} s after the load stopped")
    described = kubectl(config, "new", "describe", "hpa", "burn")
    assert "New size: 1; reason: All metrics below target" in described
    # kubectl 1.20 reads the same autoscaler through autoscaling/v1.
    old = kubectl(config, "old", "describe", "hpa", "burn")
    assert "Deployment/burn" in old and "Min replicas:" in old
    # NAME REFERENCE TARGETS (named, as Kubernetes ≥ 1.30 prints them) MINPODS MAXPODS REPLICAS AGE; the status
    # counts the replicas the next evaluation finds.
    table = wait_for("kubectl 1.20's table at 1 replica", lambda: (lambda row: row if row[6:7] == ["1"] else None)(
        kubectl(config, "old", "get", "hpa", "burn", "--no-headers").split()), 30, 1)
    assert table[:3] == ["burn", "Deployment/burn", "cpu:"] and table[4:6] == ["1", "4"]


def test_an_autoscaler_without_target_or_requests_changes_nothing(hpa_cluster: tuple[NetCluster, Path]) -> None:
    c, config = hpa_cluster
    ghost = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
             "metadata": {"name": "ghost", "namespace": "default"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nowhere"},
                      "minReplicas": 1, "maxReplicas": 3}}
    kubectl(config, "new", "apply", "-f", "-", input=json.dumps(ghost))
    kubectl(config, "new", "create", "deployment", "norequest", f"--image={c.images.busybox}", "--",
            "sleep", "3600")
    kubectl(config, "new", "autoscale", "deployment", "norequest", "--cpu-percent=50", "--min=1", "--max=3")

    def condition(name: str, kind: str) -> tuple[str, str, str] | None:
        out = json.loads(kubectl(config, "new", "get", "hpa", name, "-o", "json"))
        found = [(x["status"], x["reason"], x["message"]) for x in (out.get("status") or {}).get("conditions") or []
                 if x["type"] == kind]
        return found[0] if found else None

    ghost_state = wait_for("ghost unable to scale", lambda: condition("ghost", "AbleToScale"), 30, 1)
    assert ghost_state[:2] == ("False", "FailedGetScale") and 'deployments.apps "nowhere" not found' in ghost_state[2]
    # Before the pod's first usage report the metric is missing; once it is there, the request is.
    active = wait_for("norequest unable to compute for want of a request",
                      lambda: (lambda s: s if s and "missing request for cpu" in s[2] else None)(
                          condition("norequest", "ScalingActive")), 90, 1)
    assert active[:2] == ("False", "FailedGetResourceMetric")
    described = kubectl(config, "new", "describe", "hpa", "norequest")
    assert "FailedGetResourceMetric" in described and "missing request for cpu in container" in described
    assert "FailedGetScale" in kubectl(config, "new", "describe", "hpa", "ghost")
    out = json.loads(kubectl(config, "new", "get", "deployment", "norequest", "-o", "json"))
    assert out["spec"]["replicas"] == 1
