"""A StatefulSet on real agents with kubectl 1.20 and 1.33: pods start in order with stable names, each with its own
local-path claim; a deleted pod comes back with its name, board and data; scaling down and up keeps the claims;
a partitioned rolling update changes only the pods above the partition; rollout status, history (change causes) and
undo; claims going with pods scaled away and with the set (retention policy Delete); and the
bad input Kubernetes refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.kube import timefmt
from tests.network.conftest import NetCluster, kubectl, kubectl_cluster, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def sts_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
                dev_images: Any) -> Iterator[tuple[NetCluster, Path]]:
    with kubectl_cluster(tmp_path_factory.mktemp("sts"), docker_engine, docker_client, dev_images) as pair:
        yield pair


def get(config: Path, *what: str) -> Obj:
    return dict(json.loads(kubectl(config, "new", "get", *what, "-o", "json").stdout))


def statefulset(c: NetCluster, replicas: int = 3, image_tag: str = "") -> Obj:
    script = "cat /etc/hostname >> /data/id; sleep 3600"
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"serviceName": "nginx", "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"tag": image_tag or "v1"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "app", "image": c.images.busybox, "command": ["sh", "-c", script],
                                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "32Mi"}}}}]}}


def running(config: Path) -> dict[str, Obj]:
    return {p["metadata"]["name"]: p for p in get(config, "pods", "-l", "app=web")["items"]
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            and any(cond.get("type") == "Ready" and cond.get("status") == "True"
                    for cond in p["status"].get("conditions") or [])}


def data_of(c: NetCluster, config: Path, ordinal: int) -> str:
    claim = get(config, "pvc", f"data-web-{ordinal}")
    pv = get(config, "pv", claim["spec"]["volumeName"])
    path = Path(pv["spec"]["hostPath"]["path"]) / "id"
    return path.read_text() if path.exists() else ""


def test_a_statefulset_keeps_names_boards_and_data(sts_cluster: tuple[NetCluster, Path]) -> None:
    c, config = sts_cluster
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx"},
               "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
    kubectl(config, "old", "create", "-f", "-", input=json.dumps(service))
    kubectl(config, "old", "create", "-f", "-", input=json.dumps(statefulset(c)))
    pods = wait_for("three pods ready", lambda: (lambda r: r if len(r) == 3 else None)(running(config)), 120, 0.5)
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    # In order: each pod was made only once the one before it was ready.
    for before, after in (("web-0", "web-1"), ("web-1", "web-2")):
        ready = next(x for x in pods[before]["status"]["conditions"] if x["type"] == "Ready")
        made = timefmt.parse(pods[after]["metadata"]["creationTimestamp"])
        ready_at = timefmt.parse(ready["lastTransitionTime"])
        assert made is not None and ready_at is not None and made >= ready_at
    for i in range(3):
        pod = pods[f"web-{i}"]
        assert pod["spec"]["hostname"] == f"web-{i}" and pod["spec"]["subdomain"] == "nginx"
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
        wait_for(f"web-{i} wrote its name", lambda i=i: data_of(c, config, i) == f"web-{i}\n", 30, 0.3)
    endpoints = get(config, "endpoints", "nginx")
    assert sorted(a["hostname"] for s in endpoints["subsets"] for a in s["addresses"]) == ["web-0", "web-1",
                                                                                           "web-2"]
    # The headless service gives each pod a DNS name: web-1.nginx.default.svc.cluster.local is web-1's address.
    ip = pods["web-1"]["status"]["podIP"]

    def resolved() -> str | None:
        out = kubectl(config, "new", "exec", "web-0", "--", "nslookup", "web-1.nginx.default.svc.cluster.local",
                      check=False).stdout
        return out if ip in out else None

    wait_for("web-1's DNS name", resolved, 30, 1.0)
    table = kubectl(config, "new", "get", "sts", "web", "--no-headers").stdout.split()
    assert table[:2] == ["web", "3/3"]
    described = kubectl(config, "old", "describe", "sts", "web").stdout
    assert "Pods Status:" in described and "3 Running" in described and "data" in described
    assert "create Pod web-2 in StatefulSet web successful" in described

    # web-1 deleted: it comes back, same name, same board, same data.
    board = pods["web-1"]["spec"]["nodeName"]
    uid = pods["web-1"]["metadata"]["uid"]
    kubectl(config, "new", "delete", "pod", "web-1", "--wait=false")
    back = wait_for("web-1 back", lambda: (lambda r: r.get("web-1") if r.get("web-1") and
                                           r["web-1"]["metadata"]["uid"] != uid else None)(running(config)), 90, 0.5)
    assert back["spec"]["nodeName"] == board
    wait_for("web-1 wrote again", lambda: data_of(c, config, 1) == "web-1\nweb-1\n", 30, 0.3)

    # Scale to 1 (highest first) and back to 3: the claims and their data stay.
    kubectl(config, "old", "scale", "sts", "web", "--replicas=1")
    wait_for("one pod left", lambda: sorted(p["metadata"]["name"] for p in get(
        config, "pods", "-l", "app=web")["items"]) == ["web-0"], 90, 0.5)
    assert {f"data-web-{i}" for i in range(3)} <= {p["metadata"]["name"] for p in get(config, "pvc")["items"]}
    kubectl(config, "new", "scale", "sts", "web", "--replicas=3")
    wait_for("three again", lambda: len(running(config)) == 3, 120, 0.5)
    wait_for("web-2 found its data", lambda: data_of(c, config, 2) == "web-2\nweb-2\n", 30, 0.3)


def test_partitioned_rolling_update_history_and_undo(sts_cluster: tuple[NetCluster, Path]) -> None:
    _, config = sts_cluster
    wait_for("three ready", lambda: len(running(config)) == 3, 120, 0.5)
    before = {n: p["metadata"]["uid"] for n, p in running(config).items()}
    patch = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
                      "template": {"metadata": {"annotations": {"tag": "v2"}}}}}
    kubectl(config, "old", "annotate", "sts", "web", "kubernetes.io/change-cause=tag v2")
    kubectl(config, "new", "patch", "sts", "web", "--type=merge", "-p", json.dumps(patch))
    status = kubectl(config, "new", "rollout", "status", "sts/web", "--timeout=120s").stdout
    assert "partitioned roll out complete: 1 new pods have been updated" in status
    now = running(config)
    assert now["web-2"]["metadata"]["uid"] != before["web-2"]
    assert now["web-2"]["metadata"]["annotations"]["tag"] == "v2"
    for name in ("web-0", "web-1"):
        assert now[name]["metadata"]["uid"] == before[name] and now[name]["metadata"]["annotations"]["tag"] == "v1"
    sts = get(config, "sts", "web")
    assert sts["status"]["updatedReplicas"] == 1 and sts["status"]["currentRevision"] != sts["status"][
        "updateRevision"]
    for which in ("old", "new"):
        history = kubectl(config, which, "rollout", "history", "sts/web").stdout.splitlines()
        assert [line.split(None, 1) for line in history[2:] if line.strip()] == [["1", "<none>"], ["2", "tag v2"]]
        second = kubectl(config, which, "rollout", "history", "sts/web", "--revision=2").stdout
        assert "tag: v2" in second and "Pod Template:" in second
    # The rest of the way, then back to the first template with `rollout undo`.
    kubectl(config, "new", "patch", "sts", "web", "--type=merge", "-p",
            '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    # (partition 0 is still a partition: kubectl words it so against Kubernetes too)
    assert "roll out complete: 3 new pods have been updated" in kubectl(config, "new", "rollout", "status",
                                                                         "sts/web", "--timeout=180s").stdout
    assert {p["metadata"]["annotations"]["tag"] for p in running(config).values()} == {"v2"}
    kubectl(config, "new", "rollout", "undo", "sts/web")
    kubectl(config, "new", "rollout", "status", "sts/web", "--timeout=180s")
    assert {p["metadata"]["annotations"]["tag"] for p in running(config).values()} == {"v1"}
    revisions = get(config, "controllerrevisions")["items"]
    assert sorted(r["revision"] for r in revisions) == [2, 3]  # the first template's revision renumbered


def test_statefulset_bad_input_in_kubernetes_words(sts_cluster: tuple[NetCluster, Path]) -> None:
    c, config = sts_cluster
    bad = statefulset(c)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    for which in ("old", "new"):
        refused = kubectl(config, which, "create", "-f", "-", input=json.dumps(bad), check=False)
        assert refused.returncode != 0
        assert ('The StatefulSet "bad" is invalid: spec.template.metadata.labels: Invalid value: '
                'map[string]string{"app":"web"}: `selector` does not match template `labels`') in refused.stderr
        changed = kubectl(config, which, "patch", "sts", "web", "--type=merge", "-p", '{"spec":{"serviceName":"x"}}',
                          check=False)
        assert changed.returncode != 0
        assert ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                "forbidden") in changed.stderr
    policy = statefulset(c)
    policy["metadata"]["name"] = "policy"
    policy["spec"]["podManagementPolicy"] = "Random"
    refused = kubectl(config, "new", "create", "-f", "-", input=json.dumps(policy), check=False)
    assert "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'" in \
        refused.stderr


def test_claims_go_with_pods_scaled_away_and_with_the_set(sts_cluster: tuple[NetCluster, Path]) -> None:
    c, config = sts_cluster
    sts = statefulset(c, replicas=2)
    sts["metadata"]["name"] = "cache"
    sts["spec"].update({"serviceName": "cache", "podManagementPolicy": "Parallel",
                        "selector": {"matchLabels": {"app": "cache"}},
                        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"}})
    sts["spec"]["template"]["metadata"]["labels"] = {"app": "cache"}
    kubectl(config, "old", "create", "-f", "-", input=json.dumps(sts))

    def claims() -> set[str]:
        return {p["metadata"]["name"] for p in get(config, "pvc", "-l", "app=cache")["items"]
                if not p["metadata"].get("deletionTimestamp")}

    def pod_names() -> list[str]:
        return sorted(p["metadata"]["name"] for p in get(config, "pods", "-l", "app=cache")["items"])

    wait_for("two claims bound", lambda: all(p["status"].get("phase") == "Bound" for p in get(
        config, "pvc", "-l", "app=cache")["items"]) and claims() == {"data-cache-0", "data-cache-1"}, 120, 0.5)
    owner = get(config, "pvc", "data-cache-0")["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o.get("controller")) for o in owner] == [("StatefulSet", "cache", True)]
    # The revision table as kubectl prints it.
    row = kubectl(config, "new", "get", "controllerrevisions", "-l", "app=cache", "--no-headers").stdout.split()
    assert row[0].startswith("cache-") and row[1:3] == ["statefulset.apps/cache", "1"]
    # Scaled away: the pod's claim goes after it (its volume's data with it, reclaim Delete).
    kubectl(config, "old", "scale", "sts", "cache", "--replicas=1")
    wait_for("data-cache-1 gone", lambda: claims() == {"data-cache-0"} and pod_names() == ["cache-0"], 90, 0.5)
    # The set deleted: its claims go with it.
    kubectl(config, "new", "delete", "sts", "cache", "--wait=false")
    wait_for("no claims left", lambda: not claims() and not pod_names(), 90, 0.5)
    assert not get(config, "controllerrevisions", "-l", "app=cache")["items"]
