"""The node lifecycle controller and its taint eviction, one `sync` at a time, on a clock the test moves.

Driven through `direct.py`: an in-process store written through the API's handlers,
informers that relist only when the test says so, and the controller's queued keys
run by hand. The controller reads all its time — monotonic, for how long a heartbeat
has been still, and wall-clock, for the taints' `timeAdded`, condition stamps and
eviction deadlines — from the clock it is built with, and its work queue's timers
follow the same clock; the test hands it one fake clock: a 40 s grace period is a
`clock.advance(41)`, not a sleep.

What it promises: a node whose heartbeat (Lease `renewTime` or Ready
`lastHeartbeatTime`) has not moved for `node_monitor_grace_seconds`, counted on the
master's clock from when it last *changed*, becomes Ready=Unknown (and its pressure
conditions too), its pods are marked not Ready, and it is tainted `unreachable`
NoSchedule + NoExecute with `timeAdded` = when it was last heard from; a node
reporting Ready=False is tainted `not-ready`; a Ready node loses both. Pods that do
not tolerate a NoExecute taint go at once, those that tolerate it for
`tolerationSeconds` when that runs out, those that tolerate it for ever stay; on a
node that is not Ready they go with grace 0. Pods bound to a deleted node are deleted.
A node that has never posted its status is left alone (no taint) for the same grace,
then becomes Ready=Unknown (NodeStatusNeverUpdated) and is tainted like a silent one.

Every test here runs beside two healthy bystander boards (renewed at each `resync` and
`due`), so a lost node is one of three in its zone: Normal, as when one board of a
cluster dies. Whole-zone outages are `test_disruption_sync.py`'s.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.kube import timefmt
from core.kube.scheduling import NOT_READY, UNREACHABLE
from master.controllers import podutil
from master.controllers.nodelifecycle import NodeLifecycleController
from tests.master.controllers.direct import Harness, harness

Obj = dict[str, Any]
NS = "default"
LEASES = "kube-node-lease"
GRACE = 40.0
START = 1_900_000_000.0  # 2030-03-17T17:46:40Z: a whole second, so RFC 3339 stamps are exact


class Clock:
    """Monotonic and wall time that move only when told, together."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = START

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def stamp(wall: float) -> str:
    return timefmt.rfc3339(dt.datetime.fromtimestamp(wall, dt.UTC))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with harness(tmp_path, namespaces=(NS, LEASES), node_monitor_grace_seconds=GRACE,
                 node_monitor_period_seconds=5.0) as h:
        yield h


@pytest.fixture
def nlc(h: Harness, clock: Clock) -> NodeLifecycleController:
    return h.build(lambda env: NodeLifecycleController(env, clock=clock))


_beats = itertools.count()


def beat() -> str:
    """A fresh heartbeat value: only its change matters (the master times it by its own clock)."""
    return f"2020-01-01T00:00:{next(_beats) % 60:02d}.{next(_beats):06d}Z"


def conditions(ready: str, heartbeat: str) -> list[Obj]:
    out = [{"type": t, "status": "False", "reason": "KubeletHasNoPressure", "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": "2020-01-01T00:00:00Z"} for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
    out.append({"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "KubeletNotReady",
                "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2020-01-01T00:00:00Z"})
    return out


def register(h: Harness, name: str, taints: list[Obj] | None = None) -> None:
    """A board joins: its Node (Ready), then its Lease."""
    h.client.create(h.kinds.nodes, "", {"metadata": {"name": name}, "spec": {"taints": taints} if taints else {}})
    post_status(h, name, "True")
    h.client.create(h.kinds.leases, LEASES, {"metadata": {"name": name}, "spec": {
        "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": beat()}})


def post_status(h: Harness, name: str, ready: str) -> None:
    """The kubelet's status report (a heartbeat of its own)."""
    h.client.patch(h.kinds.nodes, "", name, {"status": {"conditions": conditions(ready, beat())}},
                   subresource="status")


def renew(h: Harness, name: str) -> None:
    h.client.patch(h.kinds.leases, LEASES, name, {"spec": {"renewTime": beat()}})


def node(h: Harness, name: str) -> Obj:
    n = h.client.get(h.kinds.nodes, "", name)
    assert n is not None
    return n


def cond(obj: Obj, kind: str) -> Obj:
    c = podutil.condition(obj, kind)
    assert c is not None, kind
    return c


def taints(h: Harness, name: str) -> list[Obj]:
    found: list[Obj] = (node(h, name).get("spec") or {}).get("taints") or []
    return found


def taint_keys(h: Harness, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in taints(h, name)}


def bound_pod(h: Harness, name: str, node_name: str, tolerations: list[Obj] | None = None) -> Obj:
    """A Running, Ready pod on `node_name` (tolerations beyond the pod defaults' 30 s ones, if given)."""
    spec: Obj = {"containers": [{"name": "c", "image": "nginx:1"}], "nodeName": node_name}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    h.client.create(h.kinds.pods, NS, {"metadata": {"name": name}, "spec": spec})
    return h.client.patch(h.kinds.pods, NS, name, {"status": {
        "phase": "Running", "podIP": "10.244.0.9",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}},
        subresource="status")


def pod(h: Harness, name: str) -> Obj | None:
    return h.client.get(h.kinds.pods, NS, name)


BYSTANDERS = ("b1", "b2")


@pytest.fixture(autouse=True)
def bystanders(h: Harness) -> None:
    """Two healthy boards in every test's zone (see the module's docstring)."""
    for name in BYSTANDERS:
        register(h, name)


def _renew_bystanders(h: Harness) -> None:
    for name in BYSTANDERS:
        if h.client.get(h.kinds.leases, LEASES, name) is not None:
            renew(h, name)
    h.catch_up("leases")


def resync(h: Harness, c: NodeLifecycleController) -> None:
    """One monitor period: every node looked at (the controller's own resync), until its writes are seen."""
    _renew_bystanders(h)
    h.settle(c)


def due(c: NodeLifecycleController, h: Harness | None = None) -> list[str]:
    """Sync the keys whose `add_after` time has come on the fake clock (the bystanders' aside)."""
    if h is not None:
        _renew_bystanders(h)
    ran: list[str] = []
    while len(ran) < 100 and (key := c.queue.get(timeout=0)) is not None:
        try:
            c.sync(key)
        finally:
            c.queue.done(key)
        ran.append(key)
    return [k for k in ran if k not in BYSTANDERS]


def forever(key: str) -> Obj:
    return {"key": key, "operator": "Exists", "effect": "NoExecute"}


def for_seconds(key: str, seconds: int) -> Obj:
    return {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}


# --- noticing a silent node ---------------------------------------------------------------------------


def test_a_silent_node_becomes_unknown_after_the_grace_period(h: Harness, nlc: NodeLifecycleController,
                                                              clock: Clock) -> None:
    register(h, "n1")
    resync(h, nlc)
    heard = clock.wall
    clock.advance(GRACE - 1)
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "True"
    assert taints(h, "n1") == []
    clock.advance(2)
    resync(h, nlc)
    n = node(h, "n1")
    ready = cond(n, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastTransitionTime"] == stamp(clock.wall)
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert cond(n, kind)["status"] == "Unknown", kind
    assert taints(h, "n1") == [{"key": UNREACHABLE, "effect": "NoSchedule"},
                               {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp(heard)}], \
        "timeAdded is when the node was last heard from, not when it was noticed"


def test_the_controller_looks_again_when_the_grace_runs_out(h: Harness, nlc: NodeLifecycleController,
                                                            clock: Clock) -> None:
    """No resync needed: each sync of a live node sets a timer for the end of its grace period."""
    register(h, "n1")
    resync(h, nlc)
    clock.advance(GRACE)
    assert due(nlc, h) == [], "not yet"
    clock.advance(0.2)
    assert due(nlc, h) == ["n1"]
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"


def test_a_renewed_lease_keeps_the_node_ready(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    resync(h, nlc)
    clock.advance(30)
    renew(h, "n1")
    h.catch_up("leases")
    assert h.run(nlc) == ["n1"], "a lease in kube-node-lease brings its node back for a look"
    clock.advance(30)  # 60 s after registering, 30 s after the renewal
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "True"
    clock.advance(GRACE - 30 + 1)
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"


def test_a_status_heartbeat_counts_as_much_as_a_lease(h: Harness, nlc: NodeLifecycleController,
                                                      clock: Clock) -> None:
    h.client.create(h.kinds.nodes, "", {"metadata": {"name": "n1"}})
    post_status(h, "n1", "True")  # no Lease at all
    resync(h, nlc)
    clock.advance(30)
    post_status(h, "n1", "True")
    resync(h, nlc)
    clock.advance(30)
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "True"
    clock.advance(11)
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"


def test_a_lease_elsewhere_is_not_a_heartbeat(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    resync(h, nlc)
    h.client.create(h.kinds.leases, NS, {"metadata": {"name": "n1"}, "spec": {"renewTime": beat()}})
    h.catch_up("leases")
    assert h.run(nlc) == [], "only kube-node-lease holds node heartbeats"
    clock.advance(GRACE + 1)
    h.client.patch(h.kinds.leases, NS, "n1", {"spec": {"renewTime": beat()}})
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"


def test_an_old_heartbeat_is_timed_from_when_the_master_first_sees_it(h: Harness, nlc: NodeLifecycleController,
                                                                     clock: Clock) -> None:
    """A master that starts (or a board whose clock is years behind) does not declare every node lost at once."""
    register(h, "n1")  # its heartbeats are stamped 2020, the clock says 2030
    clock.advance(3600)  # and the master only looks now
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "True"
    assert taints(h, "n1") == []


def test_a_node_that_never_reported_becomes_unknown(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    h.client.create(h.kinds.nodes, "", {"metadata": {"name": "n1"}})
    resync(h, nlc)
    clock.advance(GRACE + 1)
    resync(h, nlc)
    ready = podutil.condition(node(h, "n1"), "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusNeverUpdated")
    assert ready["message"] == "Kubelet never posted node status."
    assert ready["lastTransitionTime"] == stamp(clock.wall)
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert (cond(node(h, "n1"), kind)["status"], cond(node(h, "n1"), kind)["reason"]) == (
            "Unknown", "NodeStatusNeverUpdated"), kind
    assert taint_keys(h, "n1") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}


def test_a_node_that_has_not_reported_yet_is_not_evicting_during_its_grace(h: Harness, nlc: NodeLifecycleController,
                                                                          clock: Clock) -> None:
    h.client.create(h.kinds.nodes, "", {"metadata": {"name": "n1"}})
    resync(h, nlc)
    clock.advance(GRACE - 1)
    resync(h, nlc)
    assert (UNREACHABLE, "NoExecute") not in taint_keys(h, "n1")


def test_a_node_that_reports_within_its_grace_is_judged_by_its_report(h: Harness, nlc: NodeLifecycleController,
                                                                       clock: Clock) -> None:
    h.client.create(h.kinds.nodes, "", {"metadata": {"name": "n1"}})
    bound_pod(h, "p", "n1")
    resync(h, nlc)
    clock.advance(GRACE - 1)
    post_status(h, "n1", "True")
    resync(h, nlc)
    clock.advance(GRACE - 1)
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "True"
    assert taints(h, "n1") == []
    assert pod(h, "p") is not None


def test_a_node_reporting_not_ready_is_tainted_not_ready(h: Harness, nlc: NodeLifecycleController,
                                                         clock: Clock) -> None:
    register(h, "n1")
    resync(h, nlc)
    clock.advance(10)
    post_status(h, "n1", "False")
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "False", "the kubelet's word stands: it is alive"
    assert taints(h, "n1") == [{"key": NOT_READY, "effect": "NoSchedule"},
                               {"key": NOT_READY, "effect": "NoExecute", "timeAdded": stamp(clock.wall)}]
    clock.advance(20)
    resync(h, nlc)
    assert taints(h, "n1")[1]["timeAdded"] == stamp(clock.wall - 20), "an existing taint keeps its timeAdded"


def test_a_node_that_comes_back_loses_the_taints_and_keeps_its_own(h: Harness, nlc: NodeLifecycleController,
                                                                   clock: Clock) -> None:
    own = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    register(h, "n1", taints=[own])
    bound_pod(h, "daemon", "n1", tolerations=[forever(UNREACHABLE), forever(NOT_READY)])
    resync(h, nlc)
    clock.advance(GRACE + 1)
    resync(h, nlc)
    assert taint_keys(h, "n1") == {("dedicated", "NoSchedule"), (UNREACHABLE, "NoSchedule"),
                                   (UNREACHABLE, "NoExecute")}
    clock.advance(5)
    renew(h, "n1")
    post_status(h, "n1", "True")
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "True"
    assert taints(h, "n1") == [own]
    assert pod(h, "daemon") is not None
    clock.advance(GRACE - 1)
    resync(h, nlc)
    assert taints(h, "n1") == [own], "the grace period starts over from the new heartbeat"


def test_a_lease_alone_does_not_clear_unknown(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    """Ready=Unknown is the controller's word until the kubelet posts its own: taints stay, no new verdict."""
    register(h, "n1")
    resync(h, nlc)
    clock.advance(GRACE + 1)
    resync(h, nlc)
    clock.advance(5)
    renew(h, "n1")
    resync(h, nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"
    assert taint_keys(h, "n1") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}


# --- the pods of a lost node --------------------------------------------------------------------------


def test_pods_of_a_lost_node_are_marked_not_ready(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    register(h, "n2")
    bound_pod(h, "stays", "n1", tolerations=[forever(UNREACHABLE)])
    bound_pod(h, "elsewhere", "n2", tolerations=[forever(UNREACHABLE)])
    resync(h, nlc)
    clock.advance(GRACE + 1)
    renew(h, "n2")
    resync(h, nlc)
    stays = pod(h, "stays")
    assert stays is not None and cond(stays, "Ready")["status"] == "False", "Services stop sending it traffic"
    assert cond(stays, "Ready")["lastTransitionTime"] == stamp(clock.wall)
    other = pod(h, "elsewhere")
    assert other is not None and cond(other, "Ready")["status"] == "True"


def test_pods_of_a_lost_node_go_when_their_toleration_runs_out(h: Harness, nlc: NodeLifecycleController,
                                                               clock: Clock) -> None:
    """Default 30 s: already run out when the node is declared lost (40 s); 100 s: 100 s after the last heartbeat;
    no limit: never. Deleted with grace 0, since no kubelet will confirm."""
    register(h, "n1")
    bound_pod(h, "default", "n1")  # the pod defaults: unreachable tolerated for 30 s
    bound_pod(h, "patient", "n1", tolerations=[for_seconds(UNREACHABLE, 100)])
    bound_pod(h, "daemon", "n1", tolerations=[forever(UNREACHABLE)])
    resync(h, nlc)
    default = pod(h, "default")
    assert default is not None
    assert for_seconds(UNREACHABLE, 30) in default["spec"]["tolerations"], "what the pod defaults give"
    clock.advance(GRACE + 1)
    resync(h, nlc)
    assert pod(h, "default") is None, "gone, not terminating: grace 0"
    assert pod(h, "patient") is not None and pod(h, "daemon") is not None
    clock.advance(100 - GRACE - 2)  # 99 s after the last heartbeat
    assert due(nlc, h) == []
    assert pod(h, "patient") is not None
    clock.advance(1.1)
    assert due(nlc, h) == ["n1"], "a timer for the earliest deadline"
    assert pod(h, "patient") is None
    clock.advance(3600)
    resync(h, nlc)
    assert pod(h, "daemon") is not None


def test_the_shortest_matching_toleration_wins(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    bound_pod(h, "p", "n1", tolerations=[for_seconds(UNREACHABLE, 10), {"operator": "Exists"}])
    resync(h, nlc)
    clock.advance(GRACE + 1)
    resync(h, nlc)
    assert pod(h, "p") is None


def test_terminating_pods_of_a_lost_node_are_removed(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    bound_pod(h, "going", "n1", tolerations=[forever(UNREACHABLE)])
    h.client.delete(h.kinds.pods, NS, "going")  # graceful: waits for a kubelet that will not answer
    going = pod(h, "going")
    assert going is not None and going["metadata"].get("deletionTimestamp")
    resync(h, nlc)
    assert pod(h, "going") is not None, "a Ready node's kubelet finishes the job"
    clock.advance(GRACE + 1)
    resync(h, nlc)
    assert pod(h, "going") is None


def test_finished_pods_of_a_lost_node_are_left_alone(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    bound_pod(h, "done", "n1")
    h.client.patch(h.kinds.pods, NS, "done", {"status": {"phase": "Succeeded"}}, subresource="status")
    resync(h, nlc)
    clock.advance(GRACE + 1)
    resync(h, nlc)
    assert pod(h, "done") is not None, "nothing to move: its owner (a Job, say) still reads it"


def test_pods_of_a_not_ready_node_go_after_their_toleration(h: Harness, nlc: NodeLifecycleController,
                                                            clock: Clock) -> None:
    """Not-ready counts from when the taint is added (the kubelet is alive and said so)."""
    register(h, "n1")
    bound_pod(h, "p", "n1")  # not-ready tolerated for 30 s
    resync(h, nlc)
    clock.advance(10)
    post_status(h, "n1", "False")
    resync(h, nlc)
    assert pod(h, "p") is not None
    clock.advance(29)
    assert due(nlc, h) == []
    clock.advance(1.1)
    assert due(nlc, h) == ["n1"]
    assert pod(h, "p") is None


# --- NoExecute taints on a Ready node -----------------------------------------------------------------


def test_a_no_execute_taint_on_a_ready_node_evicts_gracefully(h: Harness, nlc: NodeLifecycleController,
                                                              clock: Clock) -> None:
    register(h, "n1")
    bound_pod(h, "plain", "n1")
    bound_pod(h, "tolerant", "n1", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                                 "effect": "NoExecute"}])
    bound_pod(h, "brief", "n1", tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoExecute",
                                              "tolerationSeconds": 60}])
    resync(h, nlc)
    h.client.patch(h.kinds.nodes, "", "n1", {"spec": {"taints": [
        {"key": "dedicated", "value": "db", "effect": "NoExecute", "timeAdded": stamp(clock.wall)}]}})
    h.catch_up("nodes")
    assert h.run(nlc) == ["n1"]
    plain = pod(h, "plain")
    assert plain is not None and plain["metadata"].get("deletionTimestamp"), \
        "deleted, but gracefully: the node's kubelet is alive to stop it"
    assert plain["metadata"]["deletionGracePeriodSeconds"] == 30
    for name in ("tolerant", "brief"):
        p = pod(h, name)
        assert p is not None and not p["metadata"].get("deletionTimestamp"), name
    resync(h, nlc)
    clock.advance(30)
    renew(h, "n1")  # the node stays Ready all along
    resync(h, nlc)
    clock.advance(29.9)
    due(nlc, h)  # the grace-period timer set before the renewal: a look, and nothing to do
    brief = pod(h, "brief")
    assert brief is not None and not brief["metadata"].get("deletionTimestamp"), "60 s are not over yet"
    clock.advance(0.2)
    assert due(nlc, h) == ["n1"], "a timer for the deadline"
    brief = pod(h, "brief")
    assert brief is not None and brief["metadata"].get("deletionTimestamp")
    tolerant = pod(h, "tolerant")
    assert tolerant is not None and not tolerant["metadata"].get("deletionTimestamp")


def test_a_taint_removed_in_time_saves_the_pod(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    bound_pod(h, "brief", "n1", tolerations=[for_seconds("maintenance", 60)])
    resync(h, nlc)
    h.client.patch(h.kinds.nodes, "", "n1", {"spec": {"taints": [
        {"key": "maintenance", "effect": "NoExecute", "timeAdded": stamp(clock.wall)}]}})
    resync(h, nlc)
    clock.advance(30)
    h.client.patch(h.kinds.nodes, "", "n1", {"spec": {"taints": None}})
    renew(h, "n1")
    resync(h, nlc)
    clock.advance(31)
    due(nlc, h)
    renew(h, "n1")
    resync(h, nlc)
    brief = pod(h, "brief")
    assert brief is not None and not brief["metadata"].get("deletionTimestamp")


# --- deleted nodes ------------------------------------------------------------------------------------


def test_pods_of_a_deleted_node_are_deleted(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    register(h, "n1")
    register(h, "n2")
    bound_pod(h, "orphan", "n1", tolerations=[forever(UNREACHABLE)])
    bound_pod(h, "safe", "n2")
    resync(h, nlc)
    h.client.delete(h.kinds.nodes, "", "n1")
    h.catch_up("nodes")
    assert h.run(nlc) == ["n1"]
    assert pod(h, "orphan") is None, "at once, whatever it tolerates: no kubelet will ever confirm it"
    assert pod(h, "safe") is not None


def test_a_node_the_cache_has_not_seen_keeps_its_pods(h: Harness, nlc: NodeLifecycleController,
                                                      clock: Clock) -> None:
    """Missing from the node cache is not deleted: the store is asked before any pod goes."""
    register(h, "n1")
    bound_pod(h, "p", "n1")
    h.catch_up("pods", "leases")  # the node informer has not listed n1 yet
    nlc.queue.add("n1")
    h.run(nlc)
    assert pod(h, "p") is not None
