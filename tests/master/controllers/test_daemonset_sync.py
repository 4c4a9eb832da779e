"""The DaemonSet controller, one `sync` at a time: which nodes get a pod, how a template change rolls, its status.

Driven through `direct.py`: an in-process store written through the API's handlers,
informers that relist only when the test says so, and the controller's queued keys
run by hand. The controller promises one pod per eligible node (nodeSelector,
required node affinity and NoSchedule/NoExecute taints decide), each pinned to its
node by a required node affinity on `metadata.name` and carrying Kubernetes'
automatic daemon tolerations; nodes that join get a pod and pods of nodes that go
or stop matching are deleted; a template change replaces pods within
`maxUnavailable` (or waits for the user with `OnDelete`); and the status counts
desired, scheduled, updated, ready and available nodes. No scheduler runs here, so
pods stay unbound unless a test binds one (to make its deletion graceful).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.kube.timefmt import rfc3339
from master.controllers.daemonset.controller import HASH_LABEL, DaemonSetController
from master.controllers.podutil import is_ready, owner_ref
from master.controllers.templatehash import template_hash
from tests.master.controllers.direct import Harness, harness

Obj = dict[str, Any]
NS = "default"
KEY = f"{NS}/agent"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path) as h:
        yield h


@pytest.fixture
def dsc(h: Harness) -> DaemonSetController:
    return h.build(DaemonSetController)


def add_node(h: Harness, name: str, labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    spec: Obj = {"taints": taints} if taints else {}
    return h.client.create(h.kinds.nodes, "", {"metadata": {"name": name, "labels": labels or {}}, "spec": spec})


def template(image: str = "busybox:1", **spec: Any) -> Obj:
    return {"metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "agent", "image": image}], **spec}}


def make_ds(h: Harness, tmpl: Obj | None = None, **spec: Any) -> Obj:
    return h.client.create(h.kinds.daemonsets, NS, {"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}}, "template": tmpl or template(), **spec}})


def set_image(h: Harness, image: str) -> None:
    ds = h.client.get(h.kinds.daemonsets, NS, "agent")
    assert ds is not None
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
    h.client.update(h.kinds.daemonsets, ds)


def pinned_node(pod: Obj) -> str:
    """The node a daemon pod is meant for: its only required node affinity term, on metadata.name."""
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert len(terms) == 1 and terms[0]["matchFields"][0]["key"] == "metadata.name"
    assert terms[0]["matchFields"][0]["operator"] == "In"
    values: list[str] = terms[0]["matchFields"][0]["values"]
    assert len(values) == 1
    return values[0]


def live_pods(h: Harness) -> list[Obj]:
    return [p for p in h.client.list(h.kinds.pods, NS) if not p["metadata"].get("deletionTimestamp")]


def pods_by_node(h: Harness) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for p in live_pods(h):
        out.setdefault(pinned_node(p), []).append(p)
    return out


def nodes_with_pods(h: Harness) -> dict[str, int]:
    return {n: len(ps) for n, ps in sorted(pods_by_node(h).items())}


def status(h: Harness) -> Obj:
    ds = h.client.get(h.kinds.daemonsets, NS, "agent")
    assert ds is not None
    st: Obj = ds.get("status") or {}
    return st


def current_hash(h: Harness) -> str:
    ds = h.client.get(h.kinds.daemonsets, NS, "agent")
    assert ds is not None
    return template_hash(ds["spec"]["template"])


def make_ready(h: Harness, pod: Obj, seconds_ago: int = 0) -> None:
    """What the kubelet reports once the pod's containers are up: Running and Ready since `seconds_ago`."""
    since = rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago))
    h.client.patch(h.kinds.pods, NS, pod["metadata"]["name"], {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}]}},
        subresource="status")


def ready_everywhere(h: Harness) -> None:
    for p in live_pods(h):
        if not is_ready(p):
            make_ready(h, p)


def hashes_by_node(h: Harness) -> dict[str, list[str]]:
    return {n: sorted(p["metadata"]["labels"][HASH_LABEL] for p in ps) for n, ps in sorted(pods_by_node(h).items())}


# --- placement -------------------------------------------------------------------------------------------


def test_one_pod_per_node_pinned_by_node_affinity(h: Harness, dsc: DaemonSetController) -> None:
    for n in ("n1", "n2", "n3"):
        add_node(h, n)
    ds = make_ds(h)
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1, "n3": 1}
    for pod in live_pods(h):
        assert not pod["spec"].get("nodeName"), "the scheduler binds daemon pods, not the controller"
        ref = pod["metadata"]["ownerReferences"]
        assert ref == [owner_ref(ds, "apps/v1", "DaemonSet")]
        assert pod["metadata"]["labels"] == {"app": "agent", HASH_LABEL: current_hash(h)}
        assert pod["metadata"]["generateName"] == "agent-"


def test_daemon_pods_get_the_automatic_tolerations(h: Harness, dsc: DaemonSetController) -> None:
    """Not-ready and unreachable NoExecute tolerated for ever (the pod defaults' 30 s do not apply), and so on."""
    add_node(h, "n1")
    make_ds(h, template(tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                      "effect": "NoSchedule"}]))
    h.settle(dsc)
    [pod] = live_pods(h)
    tolerations = {(t.get("key"), t.get("effect")): t for t in pod["spec"]["tolerations"]}
    for key, effect in [("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule")]:
        assert (key, effect) in tolerations, (key, effect)
        assert "tolerationSeconds" not in tolerations[key, effect], "tolerated for ever"
    assert ("node.kubernetes.io/unreachable", "NoSchedule") in tolerations, "the template's own are kept"
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") not in tolerations, "only for hostNetwork"


def test_host_network_pods_also_tolerate_network_unavailable(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    make_ds(h, template(hostNetwork=True))
    h.settle(dsc)
    [pod] = live_pods(h)
    assert {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"} in \
        pod["spec"]["tolerations"]


def test_a_host_network_daemon_runs_on_a_node_whose_network_is_not_up(h: Harness,
                                                                       dsc: DaemonSetController) -> None:
    add_node(h, "n1", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}])
    make_ds(h, template(hostNetwork=True))
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1}


def test_an_automatic_toleration_replaces_the_template_s_matching_one(h: Harness, dsc: DaemonSetController) -> None:
    """Kubernetes' AddOrUpdateTolerationInPodSpec: a template toleration with the same key, operator, value and
    effect gives way to the automatic one, so a daemon pod rides out a lost node for ever like every other."""
    add_node(h, "n1")
    make_ds(h, template(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 60},
                                     {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoSchedule", "tolerationSeconds": 60}]))
    h.settle(dsc)
    [pod] = live_pods(h)
    assert [t for t in pod["spec"]["tolerations"] if t["key"] == "node.kubernetes.io/not-ready"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule",
         "tolerationSeconds": 60}], "replaced in place; the one no automatic toleration matches is kept"


def test_node_selector_and_required_affinity_choose_the_nodes(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "ssd-arm", {"disk": "ssd", "arch": "arm64"})
    add_node(h, "ssd-amd", {"disk": "ssd", "arch": "amd64"})
    add_node(h, "hdd-arm", {"disk": "hdd", "arch": "arm64"})
    add_node(h, "bare")
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["arm64"]}]}]}}}
    make_ds(h, template(nodeSelector={"disk": "ssd"}, affinity=affinity))
    h.settle(dsc)
    assert nodes_with_pods(h) == {"ssd-arm": 1}
    [pod] = live_pods(h)
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd"}, "the template's selector is kept for the scheduler"
    st = status(h)
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"]) == (1, 1)


def test_taints_decide_which_nodes_are_eligible(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "plain")
    add_node(h, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    add_node(h, "evicting", taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}])
    add_node(h, "soft", taints=[{"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"}])
    add_node(h, "cordoned", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    add_node(h, "lost", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])
    make_ds(h)
    h.settle(dsc)
    assert set(nodes_with_pods(h)) == {"plain", "soft", "cordoned", "lost"}, \
        "untolerated NoSchedule/NoExecute keep pods off; PreferNoSchedule and the automatic tolerations do not"
    assert status(h)["desiredNumberScheduled"] == 4


def test_a_toleration_in_the_template_opens_a_tainted_node(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "plain")
    add_node(h, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    add_node(h, "db", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    make_ds(h, template(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                      "effect": "NoSchedule"}]))
    h.settle(dsc)
    assert set(nodes_with_pods(h)) == {"plain", "gpu"}


def test_a_node_that_joins_later_gets_a_pod(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    make_ds(h)
    h.settle(dsc)
    first = {p["metadata"]["name"] for p in live_pods(h)}
    add_node(h, "n2")
    h.catch_up("nodes")
    assert KEY in h.run(dsc), "a node event looks at every DaemonSet"
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    assert first <= {p["metadata"]["name"] for p in live_pods(h)}, "the existing pod is left alone"
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    assert status(h)["currentNumberScheduled"] == 2


def test_a_node_that_stops_matching_loses_its_pod(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1", {"role": "edge"})
    add_node(h, "n2", {"role": "edge"})
    make_ds(h, template(nodeSelector={"role": "edge"}))
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    h.client.patch(h.kinds.nodes, "", "n2", {"metadata": {"labels": {"role": "core"}}})
    h.catch_up("nodes")
    h.run(dsc)
    assert nodes_with_pods(h) == {"n1": 1}
    h.settle(dsc)
    st = status(h)
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberMisscheduled"]) == (1, 1, 0)


def test_a_node_with_a_new_untolerated_no_execute_taint_loses_its_pod(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.settle(dsc)
    h.client.patch(h.kinds.nodes, "", "n2", {"spec": {"taints": [{"key": "dedicated", "effect": "NoExecute"}]}})
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1}


def test_a_new_no_schedule_taint_keeps_the_running_pod(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.settle(dsc)
    before = {n: [p["metadata"]["uid"] for p in ps] for n, ps in pods_by_node(h).items()}
    h.client.patch(h.kinds.nodes, "", "n2", {"spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}})
    h.settle(dsc)
    after = {n: [p["metadata"]["uid"] for p in ps] for n, ps in pods_by_node(h).items()}
    assert after == before, "NoSchedule only keeps new pods off"
    st = status(h)
    assert (st["desiredNumberScheduled"], st["numberMisscheduled"]) == (1, 1)


def test_a_misscheduled_pod_goes_when_a_no_execute_taint_follows(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.settle(dsc)
    h.client.patch(h.kinds.nodes, "", "n2", {"spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}})
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    h.client.patch(h.kinds.nodes, "", "n2", {"spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"},
                                                                 {"key": "dedicated", "effect": "NoExecute"}]}})
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1}
    assert status(h)["numberMisscheduled"] == 0


def test_a_deleted_node_loses_its_pod(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.settle(dsc)
    h.client.delete(h.kinds.nodes, "", "n2")
    h.catch_up("nodes")
    h.run(dsc)
    assert nodes_with_pods(h) == {"n1": 1}, "a pod meant for a node that is gone is deleted"
    h.settle(dsc)
    assert status(h)["desiredNumberScheduled"] == 1


def test_a_node_being_deleted_is_not_eligible(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    h.client.create(h.kinds.nodes, "", {"metadata": {"name": "going", "finalizers": ["example.com/hold"]}})
    h.client.delete(h.kinds.nodes, "", "going")
    make_ds(h)
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1}


# --- the pods themselves ------------------------------------------------------------------------------


def test_a_lagging_pod_cache_does_not_create_twice(h: Harness, dsc: DaemonSetController) -> None:
    """Expectations: the creations of the last sync are awaited, not repeated, until the cache shows them."""
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.catch_up()
    h.run(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    h.catch_up("daemonsets")  # its own status write is seen, the new pods are not
    dsc.queue.add(KEY)  # a resync, say
    h.run(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    h.catch_up("pods")
    h.run(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}


def test_a_failed_pod_is_replaced(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.settle(dsc)
    victim = pods_by_node(h)["n2"][0]
    h.client.patch(h.kinds.pods, NS, victim["metadata"]["name"], {"status": {"phase": "Failed"}},
                   subresource="status")
    h.settle(dsc)
    assert h.client.get(h.kinds.pods, NS, victim["metadata"]["name"]) is None
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    assert pods_by_node(h)["n2"][0]["metadata"]["uid"] != victim["metadata"]["uid"]


def test_a_surplus_pod_on_a_node_is_deleted(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    ds = make_ds(h)
    h.settle(dsc)
    [pod] = live_pods(h)
    h.client.create(h.kinds.pods, NS, {"metadata": {"generateName": "agent-", "labels": pod["metadata"]["labels"],
                                                     "ownerReferences": [owner_ref(ds, "apps/v1", "DaemonSet")]},
                                        "spec": pod["spec"]})
    assert len(live_pods(h)) == 2
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1}


def test_a_node_waits_for_its_terminating_pod_to_go(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    make_ds(h)
    h.settle(dsc)
    [pod] = live_pods(h)
    name = pod["metadata"]["name"]
    h.client.bind(NS, name, "n1")  # as the scheduler would: now its deletion is graceful
    h.client.delete(h.kinds.pods, NS, name)
    gone = h.client.get(h.kinds.pods, NS, name)
    assert gone is not None and gone["metadata"].get("deletionTimestamp"), "terminating, not gone"
    h.settle(dsc)
    assert live_pods(h) == [], "no second pod while the first is still shutting down"
    assert status(h)["currentNumberScheduled"] == 0
    h.client.delete(h.kinds.pods, NS, name, grace=0)  # the kubelet confirms
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1}


def test_pods_of_another_owner_are_not_counted(h: Harness, dsc: DaemonSetController) -> None:
    """Pods are found by their controller reference, not by labels: another DaemonSet's pods do not count."""
    add_node(h, "n1")
    other = h.client.create(h.kinds.daemonsets, NS, {"metadata": {"name": "other"}, "spec": {
        "selector": {"matchLabels": {"app": "agent"}}, "template": template(), "updateStrategy": {"type": "OnDelete"}}})
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": "other-x", "labels": {"app": "agent"},
                                                     "ownerReferences": [owner_ref(other, "apps/v1", "DaemonSet")]},
                                        "spec": {"containers": [{"name": "c", "image": "busybox:1"}],
                                                 "nodeName": "n1"}})
    make_ds(h)
    h.settle(dsc)
    mine = [p for p in live_pods(h) if p["metadata"]["name"] != "other-x"]
    assert [pinned_node(p) for p in mine] == ["n1"]
    assert h.client.get(h.kinds.pods, NS, "other-x") is not None


def test_orphaned_daemon_pods_are_adopted_not_doubled(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h)
    h.settle(dsc)
    for p in live_pods(h):  # what the garbage collector does for an Orphan deletion
        h.client.patch(h.kinds.pods, NS, p["metadata"]["name"], {"metadata": {"ownerReferences": None}})
    h.client.delete(h.kinds.daemonsets, NS, "agent")
    h.settle(dsc)
    again = make_ds(h)
    h.settle(dsc)
    assert nodes_with_pods(h) == {"n1": 1, "n2": 1}
    assert all(p["metadata"].get("ownerReferences") == [owner_ref(again, "apps/v1", "DaemonSet")]
               for p in live_pods(h))


def test_a_pod_orphaned_by_hand_is_adopted_again(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    ds = make_ds(h)
    h.settle(dsc)
    [pod] = live_pods(h)
    h.client.patch(h.kinds.pods, NS, pod["metadata"]["name"], {"metadata": {"ownerReferences": None}})
    h.catch_up("pods")
    assert h.run(dsc) == [KEY], "an orphan the selector matches brings the DaemonSet for a look"
    h.settle(dsc)
    [again] = live_pods(h)
    assert again["metadata"]["uid"] == pod["metadata"]["uid"]
    assert again["metadata"]["ownerReferences"] == [owner_ref(ds, "apps/v1", "DaemonSet")]


def test_a_pod_that_stops_matching_is_released_and_replaced(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    make_ds(h)
    h.settle(dsc)
    [pod] = live_pods(h)
    name = pod["metadata"]["name"]
    h.client.patch(h.kinds.pods, NS, name, {"metadata": {"labels": {"app": "debug"}}})
    h.settle(dsc)
    released = h.client.get(h.kinds.pods, NS, name)
    assert released is not None and not released["metadata"].get("ownerReferences"), "released, not deleted"
    mine = [p for p in live_pods(h) if p["metadata"]["name"] != name]
    assert [pinned_node(p) for p in mine] == ["n1"], "the node gets a pod of the DaemonSet again"


def test_a_daemonset_being_deleted_creates_no_pods(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    make_ds(h)
    h.client.patch(h.kinds.daemonsets, NS, "agent", {"metadata": {"finalizers": ["example.com/hold"]}})
    h.client.delete(h.kinds.daemonsets, NS, "agent")
    h.settle(dsc)
    assert live_pods(h) == []


# --- status -------------------------------------------------------------------------------------------


def test_status_counts_scheduled_ready_and_updated_nodes(h: Harness, dsc: DaemonSetController) -> None:
    for n in ("n1", "n2", "n3"):
        add_node(h, n, {"pool": "a"})
    add_node(h, "other", {"pool": "b"})
    make_ds(h, template(nodeSelector={"pool": "a"}))
    h.settle(dsc)
    assert status(h) == {"currentNumberScheduled": 3, "numberMisscheduled": 0, "desiredNumberScheduled": 3,
                         "numberReady": 0, "updatedNumberScheduled": 3, "numberAvailable": 0,
                         "numberUnavailable": 3, "observedGeneration": 1}
    make_ready(h, pods_by_node(h)["n1"][0])
    make_ready(h, pods_by_node(h)["n2"][0])
    h.settle(dsc)
    st = status(h)
    assert (st["numberReady"], st["numberAvailable"], st["numberUnavailable"]) == (2, 2, 1)


def test_status_follows_the_generation(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    make_ds(h, updateStrategy={"type": "OnDelete"})
    h.settle(dsc)
    set_image(h, "busybox:2")
    h.settle(dsc)
    st = status(h)
    assert st["observedGeneration"] == 2
    assert (st["currentNumberScheduled"], st["updatedNumberScheduled"]) == (1, 0), "the pod runs the old template"


def test_min_ready_seconds_holds_back_available(h: Harness, dsc: DaemonSetController) -> None:
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h, minReadySeconds=600)
    h.settle(dsc)
    make_ready(h, pods_by_node(h)["n1"][0])  # ready just now
    make_ready(h, pods_by_node(h)["n2"][0], seconds_ago=3600)
    h.settle(dsc)
    st = status(h)
    assert (st["numberReady"], st["numberAvailable"], st["numberUnavailable"]) == (2, 1, 1)


# --- updates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_unavailable", "nodes", "per_wave"), [(1, 3, 1), (2, 4, 2), ("50%", 3, 2), ("0%", 2, 1)])
def test_a_template_change_rolls_within_max_unavailable(h: Harness, dsc: DaemonSetController,
                                                        max_unavailable: int | str, nodes: int, per_wave: int) -> None:
    names = [f"n{i}" for i in range(1, nodes + 1)]
    for n in names:
        add_node(h, n)
    make_ds(h, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}})
    h.settle(dsc)
    ready_everywhere(h)
    h.settle(dsc)
    old = current_hash(h)
    set_image(h, "busybox:2")
    new = current_hash(h)
    assert new != old
    waves = 0
    while any(hashes != [new] for hashes in hashes_by_node(h).values()) or len(hashes_by_node(h)) < nodes:
        h.settle(dsc)
        by_node = hashes_by_node(h)
        assert all(len(v) == 1 for v in by_node.values()), "never two pods on a node"
        unready = [n for n in names if not any(is_ready(p) for p in pods_by_node(h).get(n, []))]
        assert len(unready) == min(per_wave, nodes - per_wave * waves), (waves, by_node)
        ready_everywhere(h)  # the new pods start
        waves += 1
        assert waves <= nodes
    h.settle(dsc)
    assert hashes_by_node(h) == {n: [new] for n in names}
    assert waves == -(-nodes // per_wave)
    assert status(h)["updatedNumberScheduled"] == nodes


def test_unavailable_old_pods_are_replaced_without_waiting(h: Harness, dsc: DaemonSetController) -> None:
    """Replacing a pod that is not available costs no availability: the budget does not hold it back."""
    for n in ("n1", "n2", "n3"):
        add_node(h, n)
    make_ds(h)  # maxUnavailable defaults to 1
    h.settle(dsc)
    make_ready(h, pods_by_node(h)["n1"][0])
    h.settle(dsc)
    old = current_hash(h)
    set_image(h, "busybox:2")
    new = current_hash(h)
    h.settle(dsc)
    assert hashes_by_node(h) == {"n1": [old], "n2": [new], "n3": [new]}, \
        "both pending pods replaced at once; the one available pod waits, n2 and n3 already use the budget"


def test_a_rolling_update_also_removes_misscheduled_pods(h: Harness, dsc: DaemonSetController) -> None:
    """As in Kubernetes, an old pod left on a node that now only keeps it (an untolerated NoSchedule taint) is an
    update candidate like any other: it is deleted, and no new pod is placed there."""
    add_node(h, "n1")
    add_node(h, "n2")
    make_ds(h, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    h.settle(dsc)
    ready_everywhere(h)
    h.client.patch(h.kinds.nodes, "", "n2", {"spec": {"taints": [{"key": "dedicated", "effect": "NoSchedule"}]}})
    h.settle(dsc)
    set_image(h, "busybox:2")
    h.settle(dsc)
    assert hashes_by_node(h) == {"n1": [current_hash(h)]}
    st = status(h)
    assert (st["desiredNumberScheduled"], st["numberMisscheduled"], st["updatedNumberScheduled"]) == (1, 0, 1)


def test_on_delete_waits_for_the_user(h: Harness, dsc: DaemonSetController) -> None:
    for n in ("n1", "n2"):
        add_node(h, n)
    make_ds(h, updateStrategy={"type": "OnDelete"})
    h.settle(dsc)
    old, uids = current_hash(h), {p["metadata"]["uid"] for p in live_pods(h)}
    set_image(h, "busybox:2")
    new = current_hash(h)
    h.settle(dsc)
    assert {p["metadata"]["uid"] for p in live_pods(h)} == uids
    assert hashes_by_node(h) == {"n1": [old], "n2": [old]}
    h.client.delete(h.kinds.pods, NS, pods_by_node(h)["n2"][0]["metadata"]["name"])
    h.settle(dsc)
    assert hashes_by_node(h) == {"n1": [old], "n2": [new]}
    [replacement] = pods_by_node(h)["n2"]
    assert replacement["spec"]["containers"][0]["image"] == "busybox:2"
