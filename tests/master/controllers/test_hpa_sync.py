"""The HorizontalPodAutoscaler controller, one `sync(key)` at a time over an in-process store (`direct.py`).

The pods' usage is put into the usage store as the agents' reports would (the
real path, agents → master → autoscaler, is tests/network/test_hpa.py); the
deployment's replicas, the status, the conditions and the events are what a
user reads with kubectl.
"""

from __future__ import annotations

import time
from typing import Any

from core.kube.timefmt import rfc3339
from master.controllers.hpa.controller import HorizontalPodAutoscalerController
from tests.master.controllers.direct import Harness

Obj = dict[str, Any]
NS = "default"
LONG_AGO = "2020-01-01T00:00:00Z"




def hpa_rt(h: Harness) -> Any:
    return h.client.catalog.by_kind("autoscaling", "HorizontalPodAutoscaler")


def deployment(h: Harness, replicas: int, request: str | None = "100m") -> None:
    resources = {"requests": {"cpu": request}} if request else {}
    h.client.create(h.kinds.deployments, NS, {"metadata": {"name": "web"}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}}}})


def running_pods(h: Harness, n: int, request: str | None = "100m") -> list[Obj]:
    made = []
    resources = {"requests": {"cpu": request}} if request else {}
    for i in range(n):
        pod = h.client.create(h.kinds.pods, NS, {"metadata": {"name": f"web-{i}", "labels": {"app": "web"}},
                                                 "spec": {"containers": [{"name": "c", "image": "busybox",
                                                                          "resources": resources}]}})
        pod["status"] = {"phase": "Running", "startTime": LONG_AGO, "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": LONG_AGO}]}
        made.append(h.client.update_status(h.kinds.pods, pod))
    return made


def report(h: Harness, pods: list[Obj], millis: int) -> None:
    h.env.usage.put("b1", {"node": {"cpu": 1, "memory": 1}, "window": 15.0, "timestamp": rfc3339(),
                           "pods": [{"namespace": NS, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"],
                                     "containers": [{"name": "c", "cpu": millis * 1_000_000, "memory": 1 << 20}]}
                                    for p in pods]})


def autoscaler(h: Harness, **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                          "minReplicas": 1, "maxReplicas": 4, "metrics": [
                              {"type": "Resource", "resource": {"name": "cpu", "target": {
                                  "type": "Utilization", "averageUtilization": 50}}}], **spec}}
    return h.client.create(hpa_rt(h), NS, body)


def sync(h: Harness, ctl: HorizontalPodAutoscalerController) -> Obj:
    h.catch_up()
    ctl.sync(f"{NS}/web")
    got = h.client.get(hpa_rt(h), NS, "web")
    assert got is not None
    return got


def conditions(hpa: Obj) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in hpa["status"].get("conditions") or []}


def replicas(h: Harness) -> int:
    dep = h.client.get(h.kinds.deployments, NS, "web")
    assert dep is not None
    return int(dep["spec"]["replicas"])


def test_busy_pods_scale_the_deployment_up_within_max_and_the_status_says_why(
        h: Harness, events: list[tuple[str, str, str]]) -> None:
    deployment(h, 1)
    report(h, running_pods(h, 1), 300)  # 300 % of the request against 50 %: 6 replicas, at most 4
    autoscaler(h)
    ctl = h.build(HorizontalPodAutoscalerController)
    hpa = sync(h, ctl)
    assert replicas(h) == 4
    assert ("Normal", "SuccessfulRescale",
            "New size: 4; reason: cpu resource utilization (percentage of request) above target") in events
    status = hpa["status"]
    assert status["currentReplicas"] == 1 and status["desiredReplicas"] == 4 and status["lastScaleTime"]
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "300m", "averageUtilization": 300}}}]
    assert conditions(hpa) == {"AbleToScale": ("True", "SucceededRescale"),
                               "ScalingActive": ("True", "ValidMetricFound"),
                               "ScalingLimited": ("True", "TooManyReplicas")}


def test_an_idle_autoscaler_writes_nothing_on_later_syncs(h: Harness, events: list[tuple[str, str, str]]) -> None:
    deployment(h, 2)
    report(h, running_pods(h, 2), 50)
    autoscaler(h)
    ctl = h.build(HorizontalPodAutoscalerController)
    sync(h, ctl)
    revision = h.store.revision()
    sync(h, ctl)
    assert h.store.revision() == revision and replicas(h) == 2 and not events


def test_scale_down_waits_for_the_behavior_window(h: Harness, events: list[tuple[str, str, str]]) -> None:
    deployment(h, 3)
    pods = running_pods(h, 3)
    report(h, pods, 50)
    autoscaler(h, behavior={"scaleDown": {"stabilizationWindowSeconds": 1}})
    ctl = h.build(HorizontalPodAutoscalerController)
    sync(h, ctl)
    report(h, pods, 1)
    hpa = sync(h, ctl)
    assert replicas(h) == 3 and conditions(hpa)["AbleToScale"] == ("True", "ScaleDownStabilized")
    deadline = time.monotonic() + 5
    while replicas(h) != 1 and time.monotonic() < deadline:
        sync(h, ctl)
    assert replicas(h) == 1
    assert ("Normal", "SuccessfulRescale", "New size: 1; reason: All metrics below target") in events


def test_a_missing_target_is_unable_to_scale_and_changes_nothing(
        h: Harness, events: list[tuple[str, str, str]]) -> None:
    autoscaler(h)
    ctl = h.build(HorizontalPodAutoscalerController)
    hpa = sync(h, ctl)
    assert conditions(hpa) == {"AbleToScale": ("False", "FailedGetScale")}
    assert events == [("Warning", "FailedGetScale", 'deployments.apps "web" not found')]
    message = hpa["status"]["conditions"][0]["message"]
    assert message == ("the HPA controller was unable to get the target's current scale: "
                       'deployments.apps "web" not found')


def test_pods_without_a_cpu_request_fail_the_metric_and_change_nothing(
        h: Harness, events: list[tuple[str, str, str]]) -> None:
    deployment(h, 2, request=None)
    report(h, running_pods(h, 2, request=None), 500)
    autoscaler(h)
    ctl = h.build(HorizontalPodAutoscalerController)
    hpa = sync(h, ctl)
    assert replicas(h) == 2
    assert conditions(hpa)["ScalingActive"] == ("False", "FailedGetResourceMetric")
    assert conditions(hpa)["AbleToScale"] == ("True", "SucceededGetScale")
    assert ("Warning", "FailedGetResourceMetric",
            "failed to get cpu utilization: missing request for cpu in container c of Pod web-0") in events
    assert ("Warning", "FailedComputeMetricsReplicas",
            "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: "
            "failed to get cpu utilization: missing request for cpu in container c of Pod web-0") in events


def test_replicas_outside_min_and_max_are_brought_in_without_metrics(
        h: Harness, events: list[tuple[str, str, str]]) -> None:
    deployment(h, 9)
    autoscaler(h)
    ctl = h.build(HorizontalPodAutoscalerController)
    sync(h, ctl)
    assert replicas(h) == 4
    assert events == [("Normal", "SuccessfulRescale",
                       "New size: 4; reason: Current number of replicas above Spec.MaxReplicas")]


def test_a_target_scaled_to_zero_turns_autoscaling_off(h: Harness, events: list[tuple[str, str, str]]) -> None:
    deployment(h, 0)
    autoscaler(h)
    ctl = h.build(HorizontalPodAutoscalerController)
    hpa = sync(h, ctl)
    assert replicas(h) == 0 and not events
    assert conditions(hpa)["ScalingActive"] == ("False", "ScalingDisabled")
