"""Zone disruption: many boards silent at once are not evicted (the fault is likelier the master's network).

The pure zone judgement (`disruption.zone_state`, `eviction_mode`) on counts, then the
node lifecycle controller driven by hand (`direct.py`, on the fake clock of
`test_nodelifecycle_sync.py`): one board of three lost is evicted as before; all three,
or a partially disrupted zone of a small cluster, keep their pods — conditions Unknown,
pods not Ready, NoSchedule taints, but no NoExecute taint — and when the boards come
back nothing was deleted. Kubernetes' rule needs *more than 2* unhealthy nodes for
PartialDisruption, so two of three lost is Normal and evicts (as in Kubernetes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.kube.scheduling import NOT_READY, UNREACHABLE
from master.controllers import disruption
from master.controllers.disruption import FULL, NORMAL, PARTIAL
from master.controllers.nodelifecycle import NodeLifecycleController
from tests.master.controllers.direct import Harness, harness
from tests.master.controllers.test_nodelifecycle_sync import (
    GRACE,
    LEASES,
    NS,
    Clock,
    bound_pod,
    cond,
    for_seconds,
    node,
    pod,
    post_status,
    register,
    renew,
    taint_keys,
)

# --- the pure judgement ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("healthy", "unhealthy", "state"), [
    (3, 0, NORMAL), (2, 1, NORMAL), (1, 2, NORMAL),  # two unhealthy are never a partial disruption
    (0, 1, FULL), (0, 3, FULL), (0, 60, FULL),
    (2, 3, PARTIAL),  # 0.6 >= 0.55, 3 > 2
    (3, 3, NORMAL),  # 0.5 < 0.55
    (45, 55, PARTIAL), (46, 54, NORMAL),
    (0, 0, NORMAL),  # an empty zone is not disrupted
])
def test_zone_state(healthy: int, unhealthy: int, state: str) -> None:
    assert disruption.zone_state(healthy, unhealthy, 0.55) == state


def test_zone_state_threshold_is_a_setting() -> None:
    assert disruption.zone_state(7, 3, 0.3) == PARTIAL
    assert disruption.zone_state(7, 3, 0.55) == NORMAL


@pytest.mark.parametrize(("state", "size", "mode"), [
    (NORMAL, 3, "normal"), (NORMAL, 500, "normal"),
    (FULL, 3, "stopped"), (FULL, 500, "stopped"),
    (PARTIAL, 5, "stopped"), (PARTIAL, 50, "stopped"), (PARTIAL, 51, "secondary"),
])
def test_eviction_mode(state: disruption.ZoneState, size: int, mode: str) -> None:
    assert disruption.eviction_mode(state, size, 50) == mode


def test_zone_of() -> None:
    assert disruption.zone_of({"metadata": {"name": "n"}}) == ""
    assert disruption.zone_of({"metadata": {"labels": {disruption.ZONE_LABEL: "shelf-a"}}}) == "shelf-a"


# --- the controller -------------------------------------------------------------------------------------


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


def cluster(h: Harness, names: list[str], zone: str = "") -> None:
    """Boards joined, each running one pod with the pod defaults (unreachable and not-ready tolerated 30 s)."""
    for name in names:
        register(h, name)
        if zone:
            h.client.patch(h.kinds.nodes, "", name, {"metadata": {"labels": {disruption.ZONE_LABEL: zone}}})
        bound_pod(h, f"pod-{name}", name)


def tick(h: Harness, c: NodeLifecycleController, clock: Clock, seconds: float, alive: list[str]) -> None:
    """`seconds` pass in steps of 5 s (the monitor period); the `alive` boards renew at each, and each is looked at."""
    left = seconds
    while left > 0:
        step = min(5.0, left)
        clock.advance(step)
        left -= step
        for name in alive:
            renew(h, name)
        h.settle(c)


def come_back(h: Harness, names: list[str]) -> None:
    for name in names:
        post_status(h, name, "True")
        renew(h, name)


def untouched(h: Harness, names: list[str]) -> None:
    for name in names:
        p = pod(h, f"pod-{name}")
        assert p is not None and not p["metadata"].get("deletionTimestamp"), name


def test_one_board_of_three_lost_is_evicted_as_before(h: Harness, nlc: NodeLifecycleController,
                                                      clock: Clock) -> None:
    cluster(h, ["n1", "n2", "n3"])
    h.settle(nlc)
    tick(h, nlc, clock, GRACE + 5, alive=["n2", "n3"])
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"
    assert taint_keys(h, "n1") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert pod(h, "pod-n1") is None, "its toleration (30 s) ran out: deleted with grace 0"
    untouched(h, ["n2", "n3"])


def test_all_boards_lost_at_once_keep_their_pods(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    names = ["n1", "n2", "n3"]
    cluster(h, names)
    h.settle(nlc)
    tick(h, nlc, clock, 600, alive=[])
    for name in names:
        n = node(h, name)
        assert cond(n, "Ready")["status"] == "Unknown", name
        assert taint_keys(h, name) == {(UNREACHABLE, "NoSchedule")}, "no NoExecute: nothing is evicted"
        p = pod(h, f"pod-{name}")
        assert p is not None and cond(p, "Ready")["status"] == "False", "Services still stop sending traffic"
    untouched(h, names)
    come_back(h, names)
    tick(h, nlc, clock, 5, alive=names)
    for name in names:
        assert cond(node(h, name), "Ready")["status"] == "True"
        assert taint_keys(h, name) == set()
    tick(h, nlc, clock, 600, alive=names)
    untouched(h, names)


def test_boards_lost_one_heartbeat_apart_are_one_outage(h: Harness, nlc: NodeLifecycleController,
                                                        clock: Clock) -> None:
    """The first board's grace runs out before the others': the others, silent for most of it, already count."""
    names = ["n1", "n2", "n3"]
    cluster(h, names)
    h.settle(nlc)
    clock.advance(3)
    renew(h, "n2")
    renew(h, "n3")
    h.settle(nlc)
    clock.advance(GRACE - 2)  # n1 silent 41 s, n2 and n3 38 s
    h.settle(nlc)
    assert cond(node(h, "n1"), "Ready")["status"] == "Unknown"
    assert (UNREACHABLE, "NoExecute") not in taint_keys(h, "n1")
    tick(h, nlc, clock, 120, alive=[])
    untouched(h, names)


def test_boards_coming_back_one_by_one_are_not_evicted(h: Harness, nlc: NodeLifecycleController,
                                                       clock: Clock) -> None:
    """Leaving the disruption, every node of the zone gets a fresh grace period, as Kubernetes resets its probes."""
    names = ["n1", "n2", "n3"]
    cluster(h, names)
    h.settle(nlc)
    tick(h, nlc, clock, 300, alive=[])
    come_back(h, ["n1"])  # 2 of 3 unhealthy: Normal again
    tick(h, nlc, clock, GRACE - 5, alive=["n1"])
    assert (UNREACHABLE, "NoExecute") not in taint_keys(h, "n2")
    untouched(h, names)
    come_back(h, ["n2", "n3"])
    tick(h, nlc, clock, 300, alive=names)
    untouched(h, names)
    assert all(taint_keys(h, n) == set() for n in names)


def test_a_board_that_stays_away_after_the_outage_is_evicted(h: Harness, nlc: NodeLifecycleController,
                                                              clock: Clock) -> None:
    names = ["n1", "n2", "n3"]
    cluster(h, names)
    h.settle(nlc)
    tick(h, nlc, clock, 300, alive=[])
    come_back(h, ["n1", "n2"])
    tick(h, nlc, clock, 5, alive=["n1", "n2"])  # the zone is Normal again: n3 gets a fresh grace from now
    tick(h, nlc, clock, GRACE - 5, alive=["n1", "n2"])
    assert taint_keys(h, "n3") == {(UNREACHABLE, "NoSchedule")}
    tick(h, nlc, clock, 10, alive=["n1", "n2"])
    assert taint_keys(h, "n3") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert pod(h, "pod-n3") is None
    untouched(h, ["n1", "n2"])


def test_a_lone_board_whose_pods_were_being_evicted_keeps_them_when_the_rest_go(
        h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    """A NoExecute taint already written is lifted when the zone turns fully disrupted (Kubernetes too)."""
    names = ["n1", "n2", "n3"]
    cluster(h, names)
    bound_pod(h, "patient", "n1", tolerations=[for_seconds(UNREACHABLE, 300)])
    h.settle(nlc)
    tick(h, nlc, clock, GRACE + 5, alive=["n2", "n3"])
    assert (UNREACHABLE, "NoExecute") in taint_keys(h, "n1")
    tick(h, nlc, clock, GRACE + 5, alive=[])
    assert taint_keys(h, "n1") == {(UNREACHABLE, "NoSchedule")}
    tick(h, nlc, clock, 600, alive=[])
    assert pod(h, "patient") is not None


def test_two_of_three_lost_is_normal_and_evicts(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    """Kubernetes' PartialDisruption needs more than 2 unhealthy nodes: 2 of 3 is Normal."""
    cluster(h, ["n1", "n2", "n3"])
    h.settle(nlc)
    tick(h, nlc, clock, GRACE + 5, alive=["n3"])
    assert pod(h, "pod-n1") is None and pod(h, "pod-n2") is None
    untouched(h, ["n3"])


def test_a_partially_disrupted_small_cluster_evicts_nothing(h: Harness, nlc: NodeLifecycleController,
                                                            clock: Clock) -> None:
    names = [f"n{i}" for i in range(1, 6)]
    cluster(h, names)
    h.settle(nlc)
    tick(h, nlc, clock, 600, alive=["n4", "n5"])  # 3 of 5 lost: 0.6 >= 0.55, and more than 2
    for name in ("n1", "n2", "n3"):
        assert cond(node(h, name), "Ready")["status"] == "Unknown"
        assert taint_keys(h, name) == {(UNREACHABLE, "NoSchedule")}
    untouched(h, names)
    come_back(h, ["n1", "n2", "n3"])
    tick(h, nlc, clock, 300, alive=names)
    untouched(h, names)
    assert all(taint_keys(h, n) == set() for n in names)


def test_a_board_reporting_not_ready_in_a_disrupted_zone_keeps_its_pods(
        h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    names = ["n1", "n2", "n3"]
    cluster(h, names)
    h.settle(nlc)
    for name in names:
        post_status(h, name, "False")  # every runtime down at once, say
    tick(h, nlc, clock, 120, alive=names)
    for name in names:
        assert taint_keys(h, name) == {(NOT_READY, "NoSchedule")}
    untouched(h, names)


def test_zones_are_judged_apart(h: Harness, nlc: NodeLifecycleController, clock: Clock) -> None:
    """Shelf a loses every board (no eviction there); on shelf b one board of three is lost and evicted."""
    cluster(h, ["a1", "a2"], zone="a")
    cluster(h, ["b1", "b2", "b3"], zone="b")
    h.settle(nlc)
    tick(h, nlc, clock, GRACE + 40, alive=["b2", "b3"])
    untouched(h, ["a1", "a2", "b2", "b3"])
    assert pod(h, "pod-b1") is None


def test_a_large_partially_disrupted_cluster_evicts_at_the_secondary_rate(tmp_path: Path, clock: Clock) -> None:
    with harness(tmp_path, namespaces=(NS, LEASES), node_monitor_grace_seconds=GRACE,
                 large_cluster_size_threshold=4, secondary_node_eviction_rate=0.01) as h:
        c = h.build(lambda env: NodeLifecycleController(env, clock=clock))
        names = [f"n{i}" for i in range(1, 6)]
        cluster(h, names)
        h.settle(c)
        tick(h, c, clock, GRACE + 5, alive=["n4", "n5"])  # 3 of 5 lost in a "large" (> 4) cluster
        tainted = [n for n in ("n1", "n2", "n3") if (UNREACHABLE, "NoExecute") in taint_keys(h, n)]
        assert len(tainted) == 1, "one node per 100 s"
        tick(h, c, clock, 100, alive=["n4", "n5"])
        tainted = [n for n in ("n1", "n2", "n3") if (UNREACHABLE, "NoExecute") in taint_keys(h, n)]
        assert len(tainted) == 2
