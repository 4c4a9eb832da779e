"""metrics.k8s.io as `kubectl top` (1.20 and 1.33) and the Python client read it, from boards' usage reports.

Simulated boards send the reports a real agent sends (`PUT /pikube/v1/nodes/NAME/metrics`) with numbers the test
chooses, so every figure kubectl prints can be checked exactly; tests/network/test_top.py has real agents
sample real containers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from core import errors
from pikube.sim.api import resource_path
from tests.master.conftest import kubectl
from tests.master.controllers.conftest import Cluster, make_cluster, stop_cluster, wait_for

Obj = dict[str, Any]
MI = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = make_cluster(tmp_path_factory.mktemp("metrics"))
    try:
        yield c
    finally:
        stop_cluster(c)


def report(cpu_millis: int, memory_mi: int, pods: list[tuple[str, str, str, list[tuple[str, int, int]]]]) -> Obj:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"timestamp": now, "window": 15.0,
            "node": {"cpu": cpu_millis * 1_000_000, "memory": memory_mi * MI, "temperature": 51.5, "throttled": 0},
            "pods": [{"namespace": ns, "name": name, "uid": uid,
                      "containers": [{"name": c, "cpu": m * 1_000_000, "memory": mi * MI} for c, m, mi in cs]}
                     for ns, name, uid, cs in pods]}


def _pod(c: Cluster, name: str, node: str, labels: dict[str, str]) -> Obj:
    return c.admin.create(resource_path("v1", "pods", "default"), {
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox"},
                                                   {"name": "side", "image": "busybox"}]}})


def test_kubectl_top_nodes_and_pods_show_what_the_boards_reported(cluster: Cluster) -> None:
    c = cluster
    b1, b2 = c.fleet.add("top-1"), c.fleet.add("top-2")
    wait_for(lambda: all(c.get("v1", "nodes", "", n) for n in ("top-1", "top-2")), what="nodes")
    web = _pod(c, "web", "top-1", {"app": "web"})
    db = _pod(c, "db", "top-2", {"app": "db"})
    _pod(c, "unsampled", "top-2", {"app": "db"})
    b1.api.request("PUT", "/pikube/v1/nodes/top-1/metrics", report(250, 300, [
        ("default", "web", web["metadata"]["uid"], [("app", 120, 40), ("side", 5, 8)])]))
    b2.api.request("PUT", "/pikube/v1/nodes/top-2/metrics", report(900, 700, [
        ("default", "db", db["metadata"]["uid"], [("app", 800, 256), ("side", 1, 2)]),
        ("default", "gone", "0000", [("app", 1, 1)])]))  # no such pod: never listed

    for which in ("old", "new"):
        rows = {r.split()[0]: r.split() for r in kubectl(c.master, which, "top", "nodes", "--no-headers")
                .stdout.splitlines()}
        assert rows["top-1"][1] == "250m" and rows["top-1"][3] == "300Mi", rows
        assert rows["top-2"][1] == "900m" and rows["top-2"][3] == "700Mi", rows
        pods = {r.split()[0]: r.split() for r in kubectl(c.master, which, "top", "pods", "--no-headers")
                .stdout.splitlines()}
        assert set(pods) == {"web", "db"}  # a pod without a sample is left out, not shown as zero
        assert pods["web"][1:] == ["125m", "48Mi"] and pods["db"][1:] == ["801m", "258Mi"]
        out = kubectl(c.master, which, "top", "pods", "db", "--containers", "--no-headers").stdout.split()
        assert out == ["db", "app", "800m", "256Mi", "db", "side", "1m", "2Mi"]
        ordered = kubectl(c.master, which, "top", "pods", "-A", "--sort-by=cpu", "--no-headers").stdout.split()
        assert ordered[1] == "db" and ordered[5] == "web"
        selected = kubectl(c.master, which, "top", "pods", "-l", "app=db", "--no-headers").stdout.split()
        assert selected[0] == "db" and "web" not in selected

    # The official Python client's custom-objects call returns the same numbers.
    from kubernetes import client, config

    api = client.CustomObjectsApi(config.new_client_from_config(str(c.master.kubeconfig)))
    listed = api.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods")
    db_metrics = next(i for i in listed["items"] if i["metadata"]["name"] == "db")
    assert db_metrics["containers"][0]["usage"] == {"cpu": "800000000n", "memory": f"{256 * 1024}Ki"}
    assert db_metrics["window"] == "15s" and db_metrics["metadata"]["labels"] == {"app": "db"}
    node = api.get_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes", "top-2")
    assert node["usage"] == {"cpu": "900000000n", "memory": f"{700 * 1024}Ki"}
    discovery = c.admin.get("/apis")
    assert any(g["name"] == "metrics.k8s.io" for g in discovery["groups"])


def test_bad_reports_and_readers_are_refused(cluster: Cluster) -> None:
    c = cluster
    board = c.fleet.add("top-bad")
    path = "/pikube/v1/nodes/top-bad/metrics"
    with pytest.raises(errors.Forbidden, match="a board reports only its own"):
        board.api.request("PUT", "/pikube/v1/nodes/top-1/metrics", report(1, 1, []))
    for bad, words in ((["not", "an", "object"], "a usage report is a JSON object"),
                       ({**report(1, 1, []), "window": 0}, "window must be"),
                       ({**report(1, 1, []), "node": {"cpu": -5, "memory": 1}}, "node.cpu must be"),
                       ({**report(1, 1, []), "pods": [{"namespace": "default", "name": "x", "containers": []}]},
                        "pods[0].containers must be a list of 1 to 64"),
                       ({**report(1, 1, []), "pods": [{}] * 1001}, "pods must be a list of at most 1000")):
        with pytest.raises(errors.BadRequest) as caught:
            board.api.request("PUT", path, bad)
        assert words in caught.value.message, caught.value.message
    with pytest.raises(errors.NotFound):  # nothing of the refused reports was kept
        c.admin.get("/apis/metrics.k8s.io/v1beta1/nodes/top-bad")
    with pytest.raises(errors.Forbidden) as denied:  # metrics are the admin's to read
        board.api.get("/apis/metrics.k8s.io/v1beta1/pods")
    assert 'cannot list resource "pods" in API group "metrics.k8s.io"' in denied.value.message
    with pytest.raises(errors.NotFound) as missing:
        c.admin.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nobody")
    assert missing.value.message == 'podmetrics.metrics.k8s.io "nobody" not found'
