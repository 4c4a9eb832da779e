"""The in-memory usage store: latest report per board, staleness, history bounds, forgetting silent boards."""

from __future__ import annotations

from typing import Any

import pytest

from master.usage import HISTORY, ReportError, UsageStore


def report(cpu: int, pods: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    return {"timestamp": "2026-12-05T00:00:00Z", "window": 15,
            "node": {"cpu": cpu, "memory": 1 << 20, "temperature": None, "throttled": None},
            "pods": [{"namespace": ns, "name": name, "uid": "u", "containers": [{"name": "c", "cpu": 1, "memory": 2}]}
                     for ns, name in pods]}


def test_latest_report_wins_and_pods_move_with_their_board() -> None:
    now = [0.0]
    store = UsageStore(clock=lambda: now[0])
    store.put("b1", report(5, (("default", "web"),)))
    store.put("b2", report(7))
    assert store.pod("default", "web") is not None
    store.put("b1", report(6))  # web no longer on b1
    assert store.pod("default", "web") is None and store.nodes()["b1"].cpu == 6
    store.put("b2", report(8, (("default", "web"),)))  # rescheduled to b2
    assert store.pod("default", "web")[0].node == "b2"  # type: ignore[index]


def test_stale_boards_are_not_served_and_silent_ones_forgotten() -> None:
    now = [0.0]
    store = UsageStore(clock=lambda: now[0])
    store.put("b1", report(5, (("default", "web"),)))
    now[0] = 121.0
    assert store.nodes() == {} and store.pods() == []  # stopped reporting: not shown as idle
    now[0] = 3602.0
    store.put("b2", report(1))
    assert store.history("b1") == [] and set(store.nodes()) == {"b2"}


def test_history_is_bounded_and_a_bad_report_changes_nothing() -> None:
    store = UsageStore()
    for i in range(HISTORY + 10):
        store.put("b1", report(i))
    assert len(store.history("b1")) == HISTORY and store.history("b1")[-1].cpu == HISTORY + 9
    with pytest.raises(ReportError):
        store.put("b1", {**report(1), "node": {"cpu": True, "memory": 1}})
    assert store.nodes()["b1"].cpu == HISTORY + 9
