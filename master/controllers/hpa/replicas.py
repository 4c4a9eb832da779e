"""How many replicas one resource metric asks for: Kubernetes' replica calculator, as a pure function.

The usage ratio is the pods' measured use over their requests (utilisation) or
over the target value. Within the tolerance (10 %) nothing changes. Pods are
sorted first, as Kubernetes does:

* deleted or failed pods are ignored;
* for CPU, pods not yet Ready (or Ready for less than the sample's window after
  starting, within the CPU initialisation period) are *unready*: their
  measurements are skewed by start-up;
* pods without a measurement are *missing*.

Unready pods count as using nothing when the ratio asks for more replicas;
missing pods count as using all they request (100 % when scaling down, 0 when
scaling up). If that conservative guess flips the direction or lands in the
tolerance, the replica count stays; a scale in the proposed direction never
goes the other way.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from core.kube import timefmt
from core.kube.quantity import bytes_value, cpu_millis

Obj = dict[str, Any]
CPU_INITIALIZATION = dt.timedelta(minutes=5)
INITIAL_READINESS_DELAY = dt.timedelta(seconds=30)


class MetricError(Exception):
    """The metric could not be computed; `reason` is the event/condition reason Kubernetes uses."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Sample:
    """One pod's measured use: millicores for CPU, bytes for memory."""

    value: int
    timestamp: dt.datetime
    window: dt.timedelta


@dataclass(frozen=True)
class Proposal:
    replicas: int
    utilization: int | None  # percent of request, for Utilization targets
    average: int  # the raw average per pod (millicores or bytes)
    timestamp: dt.datetime


def _parse(ts: Any) -> dt.datetime | None:
    if not ts:
        return None
    try:
        return timefmt.parse(str(ts))
    except ValueError:
        return None


def _ready_condition(pod: Obj) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def unready_for_cpu(pod: Obj, sample: Sample, now: dt.datetime) -> bool:
    """Whether a pod's CPU sample is skewed by its start-up (Kubernetes' groupPods)."""
    if (pod.get("status") or {}).get("phase") == "Pending":
        return True
    cond = _ready_condition(pod)
    start = _parse((pod.get("status") or {}).get("startTime"))
    if cond is None or start is None:
        return True
    changed = _parse(cond.get("lastTransitionTime")) or start
    if now - start < CPU_INITIALIZATION:
        # Still starting: unready unless Ready, and the sample taken after a full window of readiness.
        return cond.get("status") != "True" or sample.timestamp < changed + sample.window
    # Past the initialisation period: unready only if it never became ready since starting.
    return cond.get("status") == "False" and start + INITIAL_READINESS_DELAY > changed


def container_request(container: Obj, resource: str) -> int | None:
    resources = container.get("resources") or {}
    raw = (resources.get("requests") or {}).get(resource)
    if raw is None:
        return None
    return cpu_millis(raw) if resource == "cpu" else bytes_value(raw)


def pod_requests(pods: list[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of `resource` (summed over its containers, or of one container);
    MetricError naming the first container without one."""
    out = {}
    for pod in pods:
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container and c.get("name") != container:
                continue
            value = container_request(c, resource)
            if value is None:
                raise MetricError("FailedGetResourceMetric",
                                  f"missing request for {resource} in container {c.get('name')} of Pod "
                                  f"{pod['metadata']['name']}")
            total += value
        out[pod["metadata"]["name"]] = total
    return out


def resource_replicas(current: int, pods: list[Obj], samples: dict[str, Sample], resource: str,
                      target_utilization: int | None, target_average: int | None, tolerance: float,
                      now: dt.datetime, container: str = "") -> Proposal:
    """The replica count for a Resource (or ContainerResource) metric; MetricError when it cannot be had."""
    if not pods:
        raise MetricError("FailedGetResourceMetric", "no pods returned by selector while calculating replica count")
    if not samples:
        raise MetricError("FailedGetResourceMetric",
                          f"unable to get metrics for resource {resource}: no metrics returned from resource "
                          "metrics API")
    ready, unready, missing = [], [], []
    latest = max(s.timestamp for s in samples.values())
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") == "Failed":
            continue
        sample = samples.get(meta["name"])
        if sample is None:
            missing.append(pod)
        elif resource == "cpu" and unready_for_cpu(pod, sample, now):
            unready.append(pod)
        else:
            ready.append(pod)
    considered = ready + unready + missing
    requests = pod_requests(considered, resource, container) if target_utilization is not None else {}
    usage = {p["metadata"]["name"]: samples[p["metadata"]["name"]].value for p in ready}

    def ratio_of(values: dict[str, int]) -> tuple[float, int | None, int]:
        total = sum(values.values())
        average = total // len(values) if values else 0
        if target_utilization is not None:
            requested = sum(requests[name] for name in values)
            if requested == 0:
                raise MetricError("FailedGetResourceMetric",
                                  f"no metrics returned matched known pods (total {resource} request is zero)")
            utilization = int(total * 100 / requested)
            return utilization / target_utilization, utilization, average
        assert target_average is not None
        return (total / len(values)) / target_average if values else 0.0, None, average

    if not usage:
        raise MetricError("FailedGetResourceMetric",
                          "did not receive metrics for targeted pods (pods might be unready)")
    ratio, utilization, average = ratio_of(usage)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, utilization, average, latest)
        return Proposal(math.ceil(ratio * len(usage)), utilization, average, latest)
    guessed = dict(usage)
    for pod in missing:
        name = pod["metadata"]["name"]
        if ratio < 1.0:  # scaling down: a missing pod may be using all it asked for
            guessed[name] = requests.get(name, target_average or 0) if target_utilization is not None \
                else (target_average or 0)
        else:
            guessed[name] = 0
    if scale_up_with_unready:
        for pod in unready:
            guessed[pod["metadata"]["name"]] = 0
    if not guessed:
        raise MetricError("FailedGetResourceMetric", "did not receive metrics for targeted pods")
    new_ratio, _, _ = ratio_of(guessed)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return Proposal(current, utilization, average, latest)
    replicas = math.ceil(new_ratio * len(guessed))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        replicas = current
    return Proposal(replicas, utilization, average, latest)
