"""NodeRestriction for real: a master subprocess and simulated boards with their own node certificates.

The master runs as enable-master starts it, naming its own board (`board_node`
= pi-1): that board gets the master role from the master; any other board that
claims it gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core import errors
from pikube.sim import Api, join
from pikube.sim.api import resource_path
from tests.master.controllers.conftest import Cluster, make_cluster, stop_cluster, wait_for

pytestmark = pytest.mark.integration
NODES = resource_path("v1", "nodes")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = make_cluster(tmp_path_factory.mktemp("noderestriction"), {"board_node": "pi-1"})
    try:
        yield c
    finally:
        stop_cluster(c)


def _node(c: Cluster, name: str) -> dict[str, Any]:
    return c.admin.get(f"{NODES}/{name}")


def test_a_board_may_not_give_itself_a_role_a_range_or_taints(cluster: Cluster) -> None:
    board = cluster.fleet.add("pi-1", labels={"pikube.io/board-role": "master"},
                              taints=[{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}])
    # The master gives its own board the master role (it is the board its settings name), and a pod range.
    node = wait_for(lambda: (n := _node(cluster, "pi-1"))["spec"].get("podCIDR") and
                    "node-role.kubernetes.io/master" in n["metadata"]["labels"] and n,
                    what="pi-1's podCIDR and role labels")
    rows = cluster.kubectl("get", "nodes", "pi-1", "--no-headers").stdout.split()
    assert rows[2] == "control-plane,master"
    cidr = node["spec"]["podCIDR"]
    path = f"{NODES}/pi-1"

    with pytest.raises(errors.Forbidden) as e:
        board.api.patch(path, {"metadata": {"labels": {"node-role.kubernetes.io/worker": ""}}})
    assert e.value.code == 403
    assert 'node "pi-1" is not allowed to modify labels: node-role.kubernetes.io/worker' in e.value.message
    with pytest.raises(errors.Forbidden, match="is not allowed to modify labels"):  # nor remove one
        board.api.patch(path, {"metadata": {"labels": {"node-role.kubernetes.io/master": None}}})
    other = cluster.fleet.add("pi-8")
    theirs = wait_for(lambda: _node(cluster, "pi-8")["spec"].get("podCIDR"), what="pi-8's podCIDR")
    for wanted in (theirs, "10.244.200.0/24"):  # another board's range, or a free one: neither is its to set
        with pytest.raises(errors.Forbidden) as e:
            board.api.patch(path, {"spec": {"podCIDR": wanted, "podCIDRs": [wanted]}})
        assert e.value.code == 403 and 'node "pi-1" is not allowed to modify spec.podCIDR' in e.value.message
    with pytest.raises(errors.Forbidden, match=r"User \"system:node:pi-1\" cannot patch"):  # nor another Node
        board.api.patch(f"{NODES}/pi-8", {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
    with pytest.raises(errors.Forbidden, match="is not allowed to modify taints"):
        board.api.patch(path, {"spec": {"taints": []}})
    with pytest.raises(errors.Forbidden, match="is not allowed to modify taints"):
        board.api.patch(path, [{"op": "add", "path": "/spec/taints/-",
                                "value": {"key": "x", "effect": "NoExecute"}}], kind="json")

    after = _node(cluster, "pi-1")
    assert after["spec"]["podCIDR"] == cidr and _node(cluster, "pi-8")["spec"]["podCIDR"] == theirs
    other.halt()
    assert after["spec"]["taints"] == [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]
    assert {"node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane"} <= set(
        after["metadata"]["labels"])

    # Its ordinary traffic still works: its own labels, status heartbeats, its Lease.
    board.api.patch(path, {"metadata": {"labels": {"pikube.io/network-backend": "host-gw",
                                                   "topology.kubernetes.io/zone": "desk"}}})
    board.post_status()
    board.renew_lease()
    labels = _node(cluster, "pi-1")["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "desk" and labels["pikube.io/network-backend"] == "host-gw"
    # The admin still may do what the board may not.
    cluster.admin.patch(path, {"metadata": {"labels": {"node-role.kubernetes.io/edge": ""}},
                               "spec": {"taints": []}})
    assert "taints" not in _node(cluster, "pi-1")["spec"] or not _node(cluster, "pi-1")["spec"]["taints"]


def test_a_board_claiming_to_be_the_master_board_gets_no_role(cluster: Cluster) -> None:
    board = cluster.fleet.add("pi-7", labels={"pikube.io/board-role": "master"})
    path = f"{NODES}/pi-7"
    wait_for(lambda: _node(cluster, "pi-7")["spec"].get("podCIDR"), what="pi-7's podCIDR")
    with pytest.raises(errors.Forbidden) as e:
        board.api.patch(path, {"metadata": {"labels": {"node-role.kubernetes.io/master": ""}}})
    assert e.value.code == 403
    assert e.value.message == ('nodes "pi-7" is forbidden: node "pi-7" is not allowed to modify labels: '
                               "node-role.kubernetes.io/master")
    events = wait_for(lambda: [ev for ev in cluster.admin.get(resource_path("v1", "events", "default"))["items"]
                               if ev["reason"] == "RoleNotGranted" and ev["involvedObject"]["name"] == "pi-7"],
                      what="the RoleNotGranted event")
    assert events[0]["type"] == "Warning"
    labels = _node(cluster, "pi-7")["metadata"]["labels"]
    assert not [k for k in labels if k.startswith("node-role.")]
    row = next(line.split() for line in cluster.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
               if line.startswith("pi-7"))
    assert row[2] == "<none>"
    board.halt()


def test_a_worker_gets_its_role_and_pods_still_run(cluster: Cluster) -> None:
    cluster.fleet.add("pi-2", labels={"pikube.io/board-role": "worker"})
    wait_for(lambda: "node-role.kubernetes.io/worker" in _node(cluster, "pi-2")["metadata"]["labels"],
             what="pi-2's worker role")
    row = next(line.split() for line in cluster.kubectl("get", "nodes", "--no-headers").stdout.splitlines()
               if line.startswith("pi-2"))
    assert row[2] == "worker"
    ns = cluster.namespace("restrict")
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "pi-2", "containers": [{"name": "c", "image": "x"}]}}
    cluster.admin.create(resource_path("v1", "pods", ns), pod)
    wait_for(lambda: (cluster.pods(ns) or [{}])[0].get("status", {}).get("phase") == "Running",
             what="the pod running on pi-2")


def test_a_node_with_a_held_pod_range_is_refused(cluster: Cluster) -> None:
    wait_for(lambda: _node(cluster, "pi-1")["spec"].get("podCIDR"), what="pi-1's podCIDR")
    held = _node(cluster, "pi-1")["spec"]["podCIDR"]
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-9"},
            "spec": {"podCIDR": held, "podCIDRs": [held]}}
    # A board registering with a range: it may not set one at all.
    newcomer = Api(join(cluster.master.url, cluster.token, "pi-9"))
    try:
        with pytest.raises(errors.Forbidden) as denied:
            newcomer.create(NODES, body)
        assert 'node "pi-9" is not allowed to set spec.podCIDR' in denied.value.message
    finally:
        newcomer.close()
    # The admin may set one, but not one another node holds.
    with pytest.raises(errors.Invalid) as e:
        cluster.admin.create(NODES, body)
    assert e.value.code == 422
    assert [c.field for c in e.value.causes] == ["spec.podCIDR"]
    assert 'already held by node "pi-1"' in e.value.message
    with pytest.raises(errors.NotFound):
        _node(cluster, "pi-9")


def test_ranges_stay_unique_across_many_boards(cluster: Cluster) -> None:
    for i in range(5):
        cluster.fleet.add(f"pi-{20 + i}")
    nodes = wait_for(lambda: (items := cluster.admin.get(NODES)["items"]) and
                     all(n["spec"].get("podCIDR") for n in items) and items, what="every board's podCIDR")
    cidrs = [n["spec"]["podCIDR"] for n in nodes]
    assert len(cidrs) == len(set(cidrs))
