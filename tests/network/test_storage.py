"""Persistent volumes on real agents: a claim of the default local-path class becomes a directory on the board the
pod lands on; the data outlives the pod and the agent; deleting the claim deletes the directory; `Retain` keeps it;
a claim of a class that does not exist stays Pending and says why. kubectl 1.20 and 1.33 both drive it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.network.conftest import NetCluster, kubectl, kubectl_cluster, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def storage_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
                    dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with kubectl_cluster(tmp_path_factory.mktemp("pv"), docker_engine, docker_client, dev_images) as pair:
        yield pair



def get(config: Path, *what: str) -> Obj:
    return dict(json.loads(kubectl(config, "new", "get", *what, "-o", "json").stdout))


def claim(name: str, klass: str | None = None) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
    if klass is not None:
        spec["storageClassName"] = klass
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def deployment(c: NetCluster, name: str, claim_name: str) -> Obj:
    script = "echo started >> /data/log; sleep 3600"
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": c.images.busybox, "command": ["sh", "-c", script],
                                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                         "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}}}}


def running_pod(config: Path, app: str, not_named: str = "") -> Obj | None:
    for p in get(config, "pods", "-l", f"app={app}")["items"]:
        if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp") and \
                p["metadata"]["name"] != not_named:
            return dict(p)
    return None


def board_of(c: NetCluster, node: str) -> str:
    return next(b for b in c.boards if c.node(b) == node)


def test_a_local_path_claim_keeps_its_data_on_its_board_and_goes_with_the_claim(
        storage_cluster: tuple[NetCluster, Path]) -> None:
    c, config = storage_cluster
    classes = kubectl(config, "new", "get", "storageclass", "--no-headers").stdout.split()
    assert classes[:5] == ["local-path", "(default)", "pikube.io/local-path", "Delete", "WaitForFirstConsumer"]
    kubectl(config, "old", "create", "-f", "-", input=json.dumps(claim("data")))
    made = get(config, "pvc", "data")
    assert made["spec"]["storageClassName"] == "local-path"  # the default class, given at admission
    assert made["status"]["phase"] == "Pending"
    wait_for("the wait-for-consumer event", lambda: "waiting for first consumer" in kubectl(
        config, "new", "describe", "pvc", "data").stdout, 20, 0.3)

    kubectl(config, "new", "create", "-f", "-", input=json.dumps(deployment(c, "keeper", "data")))
    first = wait_for("the pod running", lambda: running_pod(config, "keeper"), 90, 0.5)
    node = first["spec"]["nodeName"]
    bound = wait_for("the claim bound", lambda: (lambda p: p if p["status"].get("phase") == "Bound" else None)(
        get(config, "pvc", "data")), 30, 0.3)
    pv = get(config, "pv", bound["spec"]["volumeName"])
    assert pv["spec"]["claimRef"]["name"] == "data" and pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]
    board = board_of(c, node)
    directory = Path(pv["spec"]["hostPath"]["path"])
    assert directory.parent == c.data_dir(board) / "storage"  # the board's own directory, as its agent published
    log = directory / "log"
    wait_for("the pod's first write", lambda: log.is_file() and log.read_text() == "started\n", 30, 0.3)
    described = kubectl(config, "new", "describe", "pvc", "data").stdout
    assert "Used By:" in described and first["metadata"]["name"] in described and "Bound" in described
    assert "local-path" in kubectl(config, "old", "describe", "pv", pv["metadata"]["name"]).stdout
    assert "WaitForFirstConsumer" in kubectl(config, "new", "describe", "sc", "local-path").stdout
    table = kubectl(config, "old", "get", "pvc", "data", "--no-headers").stdout.split()
    assert table[:6] == ["data", "Bound", pv["metadata"]["name"], "64Mi", "RWO", "local-path"]

    # The pod goes; its replacement lands on the same board (the volume's node affinity) and finds the data.
    kubectl(config, "new", "delete", "pod", first["metadata"]["name"], "--wait=false")
    second = wait_for("a replacement", lambda: running_pod(config, "keeper", first["metadata"]["name"]), 90, 0.5)
    assert second["spec"]["nodeName"] == node
    wait_for("the second write beside the first", lambda: log.read_text() == "started\nstarted\n", 30, 0.3)

    # The agent restarts: the pod keeps running with the same volume, nothing is lost.
    c.restart_agent(board)
    assert log.read_text().startswith("started\nstarted\n")
    assert running_pod(config, "keeper") is not None

    # While a pod uses the claim, deleting it waits (pvc-protection); once the pod is gone, the claim, the volume
    # and the directory go (reclaim Delete).
    kubectl(config, "new", "delete", "pvc", "data", "--wait=false")
    assert get(config, "pvc", "data")["metadata"]["deletionTimestamp"]
    assert directory.is_dir()
    kubectl(config, "new", "delete", "deployment", "keeper")
    wait_for("the directory removed", lambda: not directory.exists(), 90, 0.5)
    wait_for("the volume deleted", lambda: kubectl(config, "new", "get", "pv", pv["metadata"]["name"],
                                                  check=False).returncode != 0, 30, 0.3)
    assert kubectl(config, "new", "get", "pvc", "data", check=False).returncode != 0


def test_a_retained_static_volume_keeps_its_data(storage_cluster: tuple[NetCluster, Path]) -> None:
    c, config = storage_cluster
    board = c.boards[1]
    keep = c.workdir / "kept-volume"
    keep.mkdir()
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "kept"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                   "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(keep)},
                   "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                       {"key": "kubernetes.io/hostname", "operator": "In", "values": [c.node(board)]}]}]}}}}
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(pv))
    wait_for("the volume available", lambda: get(config, "pv", "kept")["status"].get("phase") == "Available", 20,
             0.3)
    kubectl(config, "old", "create", "-f", "-", input=json.dumps(claim("static", "")))
    wait_for("the claim bound to it", lambda: get(config, "pvc", "static")["spec"].get("volumeName") == "kept" and
             get(config, "pvc", "static")["status"].get("phase") == "Bound", 20, 0.3)
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(deployment(c, "static-user", "static")))
    pod = wait_for("the pod running", lambda: running_pod(config, "static-user"), 90, 0.5)
    assert pod["spec"]["nodeName"] == c.node(board)  # the volume's node affinity
    wait_for("the write", lambda: (keep / "log").is_file(), 30, 0.3)
    kubectl(config, "new", "delete", "deployment", "static-user")
    kubectl(config, "new", "delete", "pvc", "static")
    wait_for("the volume released", lambda: get(config, "pv", "kept")["status"].get("phase") == "Released", 30, 0.3)
    assert (keep / "log").read_text() == "started\n"


def test_a_claim_of_a_missing_class_stays_pending_and_its_pod_waits(storage_cluster: tuple[NetCluster, Path]) -> None:
    c, config = storage_cluster
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(claim("nowhere", "nope")))
    wait_for("the event", lambda: 'storageclass.storage.k8s.io "nope" not found' in kubectl(
        config, "new", "describe", "pvc", "nowhere").stdout, 20, 0.3)
    assert get(config, "pvc", "nowhere")["status"]["phase"] == "Pending"
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(deployment(c, "stuck", "nowhere")))
    kubectl(config, "new", "create", "-f", "-", input=json.dumps(deployment(c, "orphan", "never-made")))

    def said(app: str, words: str) -> bool:
        pods = get(config, "pods", "-l", f"app={app}")["items"]
        return bool(pods) and any(words in (cond.get("message") or "") for p in pods
                                  for cond in (p.get("status") or {}).get("conditions") or [])

    wait_for("the unbound claim named", lambda: said("stuck", "pod has unbound immediate PersistentVolumeClaims"),
             30, 0.3)
    wait_for("the missing claim named", lambda: said("orphan", 'persistentvolumeclaim "never-made" not found'), 30,
             0.3)
    refused = kubectl(config, "new", "create", "-f", "-", input=json.dumps(
        {**claim("bad"), "spec": {"accessModes": [], "resources": {"requests": {}}}}), check=False)
    assert refused.returncode != 0
    assert "spec.accessModes: Required value: at least 1 access mode is required" in refused.stderr
    assert "spec.resources[storage]: Required value" in refused.stderr
    changed = kubectl(config, "new", "patch", "pvc", "nowhere", "-p",
                      '{"spec":{"accessModes":["ReadWriteMany"]}}', check=False)
    assert changed.returncode != 0 and "spec is immutable after creation" in changed.stderr
    kubectl(config, "new", "delete", "deployment", "stuck", "orphan")
    kubectl(config, "new", "delete", "pvc", "nowhere")
