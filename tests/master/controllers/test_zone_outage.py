"""Every board silent at once (a switch reboots, the master's network drops): nothing is evicted.

A real master with short timings (grace 4 s) and three simulated boards running a
Deployment whose pods tolerate `unreachable` for 1 s only. All boards halt together:
the nodes turn Ready=Unknown and NoSchedule-tainted, but the zone is fully disrupted,
so no NoExecute taint is written and, over a window well past grace + toleration, no
pod is deleted. The boards come back: the same pods, Ready, and still no deletion.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.master.controllers.conftest import Cluster, make_cluster, stop_cluster, wait_for
from tests.master.controllers.test_node_loss import DEPLOY, SHORT_TOLERATION, node, ready_of

pytestmark = pytest.mark.integration

GRACE = 4.0  # FAST's node_monitor_grace_seconds
TOLERATION = 1.0  # SHORT_TOLERATION


def pod_state(c: Cluster, ns: str) -> dict[str, tuple[str, bool, bool]]:
    """uid -> (node, Ready, terminating) of the Deployment's pods."""
    return {p["metadata"]["uid"]: (p["spec"].get("nodeName") or "",
                                   any(x["type"] == "Ready" and x["status"] == "True"
                                       for x in p["status"].get("conditions") or []),
                                   bool(p["metadata"].get("deletionTimestamp")))
            for p in c.pods(ns, "app=web")}


def no_execute(n: dict[str, Any]) -> bool:
    return any(t["effect"] == "NoExecute" for t in (n.get("spec") or {}).get("taints") or [])


def hold(seconds: float, check: Any, every: float = 0.2) -> int:
    """Poll `check` (which asserts) until `seconds` have passed; how many times it held."""
    end = time.monotonic() + seconds
    looks = 0
    while True:
        check()
        looks += 1
        if time.monotonic() >= end:
            return looks
        time.sleep(every)


def test_every_board_lost_at_once_evicts_nothing(tmp_path_factory: pytest.TempPathFactory) -> None:
    c = make_cluster(tmp_path_factory.mktemp("outage"))
    try:
        names = [c.fleet.add().name for _ in range(3)]
        ns = c.namespace("outage")
        c.kubectl("apply", "-f", "-", input=DEPLOY % {"ns": ns, "tolerations": SHORT_TOLERATION})
        c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        before = wait_for(lambda: (s := pod_state(c, ns)) and len(s) == 3 and all(r for _, r, _ in s.values())
                          and s, what="three Ready pods")
        uids = set(before)

        for name in names:
            c.fleet[name].halt()

        def unknown_everywhere() -> bool:
            return all(ready_of(node(c, n)) == "Unknown" for n in names)

        wait_for(unknown_everywhere, timeout=20, what="every node Ready=Unknown")

        def nothing_evicted() -> None:
            state = pod_state(c, ns)
            assert set(state) == uids, f"pods replaced: {state}"
            assert not any(t for _, _, t in state.values()), f"a pod is being deleted: {state}"
            for n in names:
                x = node(c, n)
                assert ready_of(x) == "Unknown", (n, ready_of(x))
                assert not no_execute(x), f"{n} tainted NoExecute: {x['spec'].get('taints')}"

        # Well past grace + toleration from the moment the last node turned Unknown.
        assert hold(GRACE + TOLERATION + 5, nothing_evicted) > 10
        assert all(not r for _, r, _ in pod_state(c, ns).values()), "pods of silent boards are not Ready"
        assert all(("node.kubernetes.io/unreachable", "NoSchedule") in {
            (t["key"], t["effect"]) for t in node(c, n)["spec"].get("taints") or []} for n in names)

        for name in names:
            c.fleet.boards.pop(name)
            c.fleet.add(name)
        wait_for(lambda: all(ready_of(x := node(c, n)) == "True" and not x["spec"].get("taints") for n in names),
                 timeout=20, what="every board Ready and untainted")
        wait_for(lambda: (s := pod_state(c, ns)) and set(s) == uids and all(r for _, r, _ in s.values()),
                 timeout=20, what="the same pods Ready again")

        def still_the_same() -> None:
            state = pod_state(c, ns)
            assert set(state) == uids and not any(t for _, _, t in state.values()), state

        hold(GRACE + TOLERATION + 1, still_the_same)
    finally:
        stop_cluster(c)
