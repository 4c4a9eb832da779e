"""NodeRestriction admission (master/registry/admission.py) and unique pod ranges, through the verbs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import errors
from core.kube.nodelabels import node_may_set
from core.settings import MasterSettings
from master.controllers.nodeipam import NodeIpamController
from master.controllers.noderoles import NodeRolesController
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext, Identity
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers
from master.store.sqlite import SqliteStore
from tests.master.controllers.direct import Harness, harness

Obj = dict[str, Any]
PI1 = Identity("system:node:pi-1", ("system:nodes", "system:authenticated"))
ADMIN = Identity("kubernetes-admin", ("system:masters",))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Handlers, ResourceType]]:
    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(MasterSettings(data_dir=tmp_path), store, Catalog(builtin_resources()))
    nodes = ctx.catalog.lookup("", "v1", "nodes")
    assert nodes is not None
    try:
        yield Handlers(ctx), nodes
    finally:
        store.close()


def node(name: str, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


@pytest.mark.parametrize("key", ["kubernetes.io/hostname", "kubernetes.io/arch", "beta.kubernetes.io/os",
                                 "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
                                 "node.kubernetes.io/instance-type", "node.kubernetes.io/anything",
                                 "kubelet.kubernetes.io/x", "pikube.io/board-role", "zone", "example.com/disk"])
def test_labels_a_node_may_set(key: str) -> None:
    assert node_may_set(key)


@pytest.mark.parametrize("key", ["node-role.kubernetes.io/master", "node-role.kubernetes.io/worker",
                                 "node-restriction.kubernetes.io/secure", "kubernetes.io/other",
                                 "foo.kubernetes.io/x", "k8s.io/x", "sub.k8s.io/x",
                                 "beta.kubernetes.io/instance-typo"])
def test_labels_a_node_may_not_set(key: str) -> None:
    assert not node_may_set(key)


def test_a_node_registers_with_its_labels_and_taints_but_not_a_role(api: tuple[Handlers, ResourceType]) -> None:
    h, rt = api
    with pytest.raises(errors.Forbidden) as e:
        h.create(rt, "", node("pi-1", {"node-role.kubernetes.io/master": "", "kubernetes.io/arch": "arm64",
                                       "node-restriction.kubernetes.io/a": ""}), requester=PI1)
    assert e.value.message == ('nodes "pi-1" is forbidden: node "pi-1" is not allowed to set the following labels: '
                               "node-restriction.kubernetes.io/a, node-role.kubernetes.io/master")
    with pytest.raises(errors.Forbidden, match="podCIDR"):
        h.create(rt, "", node("pi-1", podCIDR="10.244.0.0/24"), requester=PI1)
    assert h.store.get(rt.key("", "pi-1")) is None  # nothing stored
    taints = [{"key": "dedicated", "effect": "NoSchedule"}]
    made = h.create(rt, "", node("pi-1", {"kubernetes.io/arch": "arm64", "pikube.io/board-role": "master"},
                                 taints=taints), requester=PI1)
    assert made["spec"]["taints"] == taints


def test_a_node_may_not_change_roles_cidrs_or_taints(api: tuple[Handlers, ResourceType]) -> None:
    h, rt = api
    h.create(rt, "", node("pi-1", {"node-role.kubernetes.io/master": "", "kubernetes.io/os": "linux"},
                          podCIDR="10.244.0.0/24", podCIDRs=["10.244.0.0/24"],
                          taints=[{"key": "a", "effect": "NoSchedule"}]), requester=ADMIN)
    before = h.get(rt, "", "pi-1")
    refused = [
        ("merge", {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}},
         "is not allowed to modify labels: node-role.kubernetes.io/control-plane"),
        ("merge", {"metadata": {"labels": {"node-role.kubernetes.io/master": None}}},  # removing counts too
         "is not allowed to modify labels: node-role.kubernetes.io/master"),
        ("merge", {"metadata": {"labels": {"kubernetes.io/os": "plan9"}}}, None),  # allowed: the kubelet's own
        ("merge", {"spec": {"podCIDR": "10.244.9.0/24"}}, "spec.podCIDR"),
        ("merge", {"spec": {"podCIDRs": ["10.244.0.0/24", "fd00::/64"]}}, "is not allowed to modify spec.podCIDRs"),
        ("merge", {"spec": {"taints": []}}, "is not allowed to modify taints"),
        ("json", [{"op": "add", "path": "/spec/taints/-", "value": {"key": "b", "effect": "NoExecute"}}],
         "is not allowed to modify taints"),
    ]
    for kind, body, message in refused:
        if message is None:
            h.patch(rt, "", "pi-1", kind, body, requester=PI1)
            continue
        with pytest.raises(errors.Forbidden) as e:  # 403 before validation's 422, as in Kubernetes
            h.patch(rt, "", "pi-1", kind, body, requester=PI1)
        assert message in e.value.message
    after = h.get(rt, "", "pi-1")
    assert after["metadata"]["labels"] == {**before["metadata"]["labels"], "kubernetes.io/os": "plan9"}
    assert after["spec"] == before["spec"]
    # A full replace by the node is held to the same rules; the admin (and the master itself) is not.
    replaced = {**after, "metadata": {**after["metadata"], "labels": {"kubernetes.io/os": "linux"}}}
    with pytest.raises(errors.Forbidden, match=r"node-role\.kubernetes\.io/master"):
        h.update(rt, "", "pi-1", replaced, requester=PI1)
    h.patch(rt, "", "pi-1", "merge",
            {"spec": {"taints": []}, "metadata": {"labels": {"node-role.kubernetes.io/x": ""}}}, requester=ADMIN)
    h.patch(rt, "", "pi-1", "merge", {"metadata": {"labels": {"node-role.kubernetes.io/y": ""}}})
    labels = h.get(rt, "", "pi-1")["metadata"]["labels"]
    assert {"node-role.kubernetes.io/x", "node-role.kubernetes.io/y"} <= set(labels)


def test_a_node_may_not_take_another_nodes_range(api: tuple[Handlers, ResourceType]) -> None:
    h, rt = api
    h.create(rt, "", node("pi-2", podCIDR="10.244.2.0/24", podCIDRs=["10.244.2.0/24"]), requester=ADMIN)
    h.create(rt, "", node("pi-1"), requester=PI1)
    with pytest.raises(errors.Forbidden, match=r'node "pi-1" is not allowed to modify spec\.podCIDR'):
        h.patch(rt, "", "pi-1", "merge", {"spec": {"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]}},
                requester=PI1)
    h.delete(rt, "", "pi-1", {})
    with pytest.raises(errors.Forbidden, match=r"is not allowed to set spec\.podCIDR"):
        h.create(rt, "", node("pi-1", podCIDR="10.244.2.0/24"), requester=PI1)
    assert h.store.get(rt.key("", "pi-1")) is None


def test_a_status_write_is_not_judged_on_what_it_cannot_change(api: tuple[Handlers, ResourceType]) -> None:
    h, rt = api
    taints = [{"key": "a", "effect": "NoSchedule"}]
    h.create(rt, "", node("pi-1", {"node-role.kubernetes.io/master": ""}, podCIDR="10.244.0.0/24", taints=taints),
             requester=ADMIN)
    # A board writing its status from a stale copy: the labels and spec it sends are ignored, not refused.
    stale = {"metadata": {"labels": {}}, "spec": {"taints": []}, "status": {"capacity": {"cpu": "4"}}}
    written = h.patch(rt, "", "pi-1", "merge", stale, subresource="status", requester=PI1)
    assert written["status"]["capacity"] == {"cpu": "4"} and written["spec"]["taints"] == taints
    assert "node-role.kubernetes.io/master" in written["metadata"]["labels"]


def test_other_kinds_are_not_restricted_here(api: tuple[Handlers, ResourceType]) -> None:
    h, _ = api
    ns = h.ctx.catalog.lookup("", "v1", "namespaces")
    assert ns is not None
    h.create(ns, "", {"metadata": {"name": "x", "labels": {"node-role.kubernetes.io/master": ""}}}, requester=PI1)


def test_a_pod_range_another_node_holds_is_refused(api: tuple[Handlers, ResourceType]) -> None:
    h, rt = api
    h.create(rt, "", node("pi-1", podCIDR="10.244.1.0/24", podCIDRs=["10.244.1.0/24"]), requester=ADMIN)
    with pytest.raises(errors.Invalid) as e:
        h.create(rt, "", node("pi-2", podCIDR="10.244.1.0/24"), requester=ADMIN)
    assert e.value.causes[0].field == "spec.podCIDR"
    assert 'already held by node "pi-1"' in e.value.causes[0].message
    with pytest.raises(errors.Invalid, match="pi-1"):  # overlapping counts as held
        h.create(rt, "", node("pi-2", podCIDR="10.244.0.0/23"))
    assert h.store.get(rt.key("", "pi-2")) is None
    h.create(rt, "", node("pi-2"))
    with pytest.raises(errors.Invalid, match="pi-1"):  # assigning one later, too
        h.patch(rt, "", "pi-2", "merge", {"spec": {"podCIDR": "10.244.1.0/24"}})
    h.patch(rt, "", "pi-2", "merge", {"spec": {"podCIDR": "10.244.2.0/24"}})
    # Unchanged ranges are not checked again (every heartbeat would scan all nodes).
    h.patch(rt, "", "pi-1", "merge", {"metadata": {"labels": {"a": "b"}}})


def test_ipam_skips_held_ranges(tmp_path: Path) -> None:
    with harness(tmp_path, pod_cidr="10.244.0.0/16") as hs:
        c = hs.client
        c.create(c.kinds.nodes, "", node("hand", podCIDR="10.244.0.0/23"))  # set by hand, wider than a /24
        for name in ("pi-1", "pi-2", "pi-3"):
            c.create(c.kinds.nodes, "", node(name))
        ipam = hs.build(NodeIpamController)
        hs.settle(ipam)
        cidrs = [c.get(c.kinds.nodes, "", n)["spec"]["podCIDR"] for n in ("pi-1", "pi-2", "pi-3")]
        assert len(set(cidrs)) == 3 and not {"10.244.0.0/24", "10.244.1.0/24"} & set(cidrs)


def _events(hs: Harness, reason: str) -> list[Obj]:
    hs.env.recorder.flush()
    c = hs.client
    return [e for e in c.list(c.kinds.events, "default") if e.get("reason") == reason]


def test_roles_come_from_the_masters_settings_not_from_the_board(tmp_path: Path) -> None:
    with harness(tmp_path, board_node="pi-1") as hs:
        hs.env.recorder.start()
        c = hs.client
        c.create(c.kinds.nodes, "", node("pi-1"))  # the master's board, whatever it announces
        c.create(c.kinds.nodes, "", node("pi-2", {"pikube.io/board-role": "worker"}))
        c.create(c.kinds.nodes, "", node("pi-3"))
        c.create(c.kinds.nodes, "", node("pi-4", {"pikube.io/board-role": "master"}))  # a claim, not a fact
        roles_ctl = hs.build(NodeRolesController)
        hs.settle(roles_ctl)
        got = {n: c.get(c.kinds.nodes, "", n) for n in ("pi-1", "pi-2", "pi-3", "pi-4")}
        roles = {n: sorted(k for k in o["metadata"]["labels"] if k.startswith("node-role.")) for n, o in got.items()}
        assert roles == {"pi-1": ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"],
                         "pi-2": ["node-role.kubernetes.io/worker"], "pi-3": [], "pi-4": []}
        roles_ctl.queue.add("pi-4")  # synced again: still no role, and no second event
        hs.run(roles_ctl)
        [event] = _events(hs, "RoleNotGranted")
        assert event["type"] == "Warning" and event["involvedObject"]["name"] == "pi-4"
        assert event.get("count", 1) == 1 and "masters run on pi-1" in event["message"]


def _apiserver_lease(name: str, board: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"pikube.io/apiserver": "true"},
                         "annotations": {"pikube.io/board-node": board}},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 45}}


def test_every_master_board_named_by_a_master_lease_gets_the_master_roles(tmp_path: Path) -> None:
    """Several masters: the one running the controllers learns the others' boards from their Leases in
    kube-system (which only masters write); the same Lease in a namespace a node may write to grants nothing."""
    with harness(tmp_path, board_node="pi-1") as hs:
        c = hs.client
        for ns in ("kube-system", "kube-node-lease"):
            c.create(c.kinds.namespaces, "", {"metadata": {"name": ns}})
        for name in ("pi-1", "pi-2", "pi-3", "pi-4"):
            c.create(c.kinds.nodes, "", node(name, {"pikube.io/board-role": "master"}))
        c.create(c.kinds.leases, "kube-system", _apiserver_lease("pikube-apiserver-10.0.0.2-6443", "pi-2"))
        c.create(c.kinds.leases, "kube-node-lease", _apiserver_lease("pi-4", "pi-4"))  # a node's own namespace
        roles_ctl = hs.build(NodeRolesController)
        hs.settle(roles_ctl)
        masters = {n for n in ("pi-1", "pi-2", "pi-3", "pi-4")
                   if "node-role.kubernetes.io/control-plane" in c.get(c.kinds.nodes, "", n)["metadata"]["labels"]}
        assert masters == {"pi-1", "pi-2"}
        # A third master starts: its Lease names pi-3, which gets the roles without a change to the Node.
        c.create(c.kinds.leases, "kube-system", _apiserver_lease("pikube-apiserver-10.0.0.3-6443", "pi-3"))
        hs.settle(roles_ctl)
        assert "node-role.kubernetes.io/master" in c.get(c.kinds.nodes, "", "pi-3")["metadata"]["labels"]


def test_a_master_without_a_board_gives_no_master_role(tmp_path: Path) -> None:
    with harness(tmp_path) as hs:
        c = hs.client
        c.create(c.kinds.nodes, "", node("pi-1", {"pikube.io/board-role": "master"}))
        roles_ctl = hs.build(NodeRolesController)
        hs.settle(roles_ctl)
        assert not any(k.startswith("node-role.") for k in c.get(c.kinds.nodes, "", "pi-1")["metadata"]["labels"])


def test_ipam_reports_a_clash_it_finds_and_moves_no_range(tmp_path: Path) -> None:
    with harness(tmp_path, pod_cidr="10.244.0.0/16") as hs:
        hs.env.recorder.start()
        c = hs.client
        c.create(c.kinds.nodes, "", node("pi-1", podCIDR="10.244.1.0/24", podCIDRs=["10.244.1.0/24"]))
        # A store written before ranges were checked: the same range on a second node.
        clash = node("pi-2", podCIDR="10.244.1.0/24", podCIDRs=["10.244.1.0/24"])
        clash["metadata"].update(uid="u-2", creationTimestamp="2026-01-01T00:00:00Z")
        hs.store.create(c.kinds.nodes.key("", "pi-2"), clash)
        ipam = hs.build(NodeIpamController)
        hs.settle(ipam)
        ipam.queue.add("pi-1")
        ipam.queue.add("pi-2")
        hs.run(ipam)  # again: the same clash is not reported twice
        events = _events(hs, "CIDRNotAvailable")
        assert sorted(e["involvedObject"]["name"] for e in events) == ["pi-1", "pi-2"]
        assert all(e["type"] == "Warning" and e.get("count", 1) == 1 for e in events)
        assert [c.get(c.kinds.nodes, "", n)["spec"]["podCIDR"] for n in ("pi-1", "pi-2")] == ["10.244.1.0/24"] * 2


def test_ipam_picks_again_when_the_api_refuses_a_range_its_cache_missed(tmp_path: Path) -> None:
    with harness(tmp_path, pod_cidr="10.244.0.0/16") as hs:
        c = hs.client
        c.create(c.kinds.nodes, "", node("pi-1"))
        ipam = hs.build(NodeIpamController)
        hs.catch_up()
        c.create(c.kinds.nodes, "", node("hand", podCIDR="10.244.0.0/24"))  # not in the cache yet
        ipam.queue.add("pi-1")
        with pytest.raises(errors.Invalid):
            hs.run(ipam)
        hs.settle(ipam)
        assert c.get(c.kinds.nodes, "", "pi-1")["spec"]["podCIDR"] == "10.244.1.0/24"
