"""The autoscaler's arithmetic: one metric's replica proposal (tolerance, missing and unready pods) and the
stabilisation windows and rate policies that turn proposals into the count it sets, with Kubernetes' reasons."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from master.controllers.hpa import behavior as rules
from master.controllers.hpa.replicas import MetricError, Sample, resource_replicas
from master.registry.autoscaling import default_scale_down, default_scale_up

Obj = dict[str, Any]
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
LONG_AGO = "2026-12-05T10:00:00Z"
WINDOW = dt.timedelta(seconds=15)


def pod(name: str, request: str | None = "100m", ready: bool = True, started: str = LONG_AGO,
        phase: str = "Running", deleted: bool = False) -> Obj:
    resources = {"requests": {"cpu": request}} if request else {}
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleted:
        meta["deletionTimestamp"] = LONG_AGO
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "resources": resources}]},
            "status": {"phase": phase, "startTime": started, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": started}]}}


def use(millis: int, at: dt.datetime = NOW) -> Sample:
    return Sample(millis, at, WINDOW)


def cpu(current: int, pods: list[Obj], samples: dict[str, Sample], target: int = 50) -> int:
    return resource_replicas(current, pods, samples, "cpu", target, None, 0.1, NOW).replicas


def test_the_ratio_of_use_to_requests_sets_the_count_and_the_tolerance_keeps_it() -> None:
    pods = [pod("a"), pod("b")]
    # 2 pods at 100m of 100m requested = 100 % against a 50 % target: twice as many.
    proposal = resource_replicas(2, pods, {"a": use(100), "b": use(100)}, "cpu", 50, None, 0.1, NOW)
    assert (proposal.replicas, proposal.utilization, proposal.average) == (4, 100, 100)
    # 54 % is within 10 % of 50 %: unchanged; 56 % is not.
    assert cpu(2, pods, {"a": use(54), "b": use(54)}) == 2
    assert cpu(2, pods, {"a": use(56), "b": use(56)}) == 3
    assert cpu(2, pods, {"a": use(5), "b": use(5)}) == 1


def test_an_average_value_target_divides_by_the_value_not_the_request() -> None:
    pods = [pod("a", request=None), pod("b", request=None)]
    proposal = resource_replicas(2, pods, {"a": use(300), "b": use(300)}, "cpu", None, 100, 0.1, NOW)
    assert proposal.replicas == 6 and proposal.utilization is None


def test_missing_pods_count_as_full_when_scaling_down_and_idle_when_scaling_up() -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d")]
    # Two measured pods at 10 %: a scale-down, but the two unmeasured ones may use all they asked for.
    # (10+10+100+100)/400 = 55 % → within tolerance of 50 %: unchanged.
    assert cpu(4, pods, {"a": use(10), "b": use(10)}) == 4
    # Two measured at 200 %: the missing ones count as 0: (200+200)/400 = 100 % → 8.
    assert cpu(4, pods, {"a": use(200), "b": use(200)}) == 8


def test_unready_pods_are_idle_when_scaling_up_and_ignored_pods_do_not_count() -> None:
    starting = pod("new", ready=False, started="2026-12-05T11:59:00Z")
    pods = [pod("a"), starting, pod("gone", deleted=True), pod("failed", phase="Failed")]
    # a at 150 % (3 x target) while "new" starts: (150+0)/200 = 75 % → ceil(1.5 x 2) = 3.
    assert cpu(2, pods, {"a": use(150), "new": use(500), "gone": use(900), "failed": use(900)}) == 3


def test_a_pod_without_a_request_or_no_pods_or_no_metrics_is_a_metric_error() -> None:
    with pytest.raises(MetricError) as missing:
        cpu(1, [pod("a", request=None)], {"a": use(10)})
    assert missing.value.reason == "FailedGetResourceMetric"
    assert missing.value.message == "missing request for cpu in container c of Pod a"
    with pytest.raises(MetricError, match="no pods returned by selector"):
        cpu(1, [], {})
    with pytest.raises(MetricError, match="no metrics returned from resource metrics API"):
        cpu(1, [pod("a")], {})


def test_without_behavior_a_scale_down_waits_for_the_window_and_a_scale_up_is_limited() -> None:
    history = rules.History()
    five = dt.timedelta(minutes=5)
    first = rules.without_behavior(history, NOW, 4, 4, 1, 10, five)
    assert first.replicas == 4 and first.limited == rules.WITHIN
    later = rules.without_behavior(history, NOW + dt.timedelta(minutes=1), 4, 1, 1, 10, five)
    assert later.replicas == 4 and later.stabilized == "ScaleDownStabilized"
    after = rules.without_behavior(history, NOW + dt.timedelta(minutes=6), 4, 1, 1, 10, five)
    assert after.replicas == 1
    burst = rules.without_behavior(rules.History(), NOW, 1, 50, 1, 100, five)
    assert (burst.replicas, burst.limited.reason) == (4, "ScaleUpLimit")
    capped = rules.without_behavior(rules.History(), NOW, 3, 50, 1, 5, five)
    assert (capped.replicas, capped.limited.reason) == (5, "TooManyReplicas")


def test_behavior_policies_limit_each_period_and_select_the_largest_change() -> None:
    behavior = {"scaleUp": default_scale_up(), "scaleDown": {**default_scale_down(), "stabilizationWindowSeconds": 0}}
    history = rules.History()
    window = dt.timedelta(minutes=5)
    # From 1: max(1 + 4 pods, 1 x 200 %) = 5 per 15 s.
    up = rules.with_behavior(history, NOW, 1, 20, 1, 50, behavior, window)
    assert (up.replicas, up.limited.reason) == (5, "ScaleUpLimit")
    history.record_scale(NOW, 1, 5, dt.timedelta(minutes=30))
    # 5 s later, still inside the period that added 4: the limit is counted from 1 again.
    again = rules.with_behavior(history, NOW + dt.timedelta(seconds=5), 5, 20, 1, 50, behavior, window)
    assert again.replicas == 5
    # After the period: from 5, max(9, 10) = 10.
    later = rules.with_behavior(history, NOW + dt.timedelta(seconds=20), 5, 20, 1, 50, behavior, window)
    assert later.replicas == 10
    # A Min policy takes the smaller step, Disabled none.
    slow = {"scaleUp": {**default_scale_up(), "selectPolicy": "Min"}}
    assert rules.with_behavior(rules.History(), NOW, 10, 40, 1, 50, slow, window).replicas == 14
    off = {"scaleUp": {**default_scale_up(), "selectPolicy": "Disabled"}}
    assert rules.with_behavior(rules.History(), NOW, 10, 40, 1, 50, off, window).replicas == 10


def test_behavior_stabilization_windows_hold_the_count_until_they_pass() -> None:
    behavior = {"scaleUp": default_scale_up(),
                "scaleDown": {**default_scale_down(), "stabilizationWindowSeconds": 30}}
    history = rules.History()
    window = dt.timedelta(minutes=5)
    rules.with_behavior(history, NOW, 4, 4, 1, 10, behavior, window)
    held = rules.with_behavior(history, NOW + dt.timedelta(seconds=15), 4, 1, 1, 10, behavior, window)
    assert (held.replicas, held.stabilized) == (4, "ScaleDownStabilized")
    gone = rules.with_behavior(history, NOW + dt.timedelta(seconds=45), 4, 1, 1, 10, behavior, window)
    assert gone.replicas == 1 and gone.limited == rules.WITHIN
    # A scale-down policy of 1 pod per 15 s takes one step at a time.
    step = {"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                          "policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}}
    limited = rules.with_behavior(rules.History(), NOW, 4, 1, 1, 10, step, window)
    assert (limited.replicas, limited.limited.reason) == (3, "ScaleDownLimit")
