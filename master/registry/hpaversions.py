"""HorizontalPodAutoscaler's two served versions: autoscaling/v2 is stored, autoscaling/v1 is a view of it.

`kubectl autoscale` of kubectl ≤ 1.22 and kubectl 1.20's `describe hpa` speak v1,
whose spec holds one CPU target (`targetCPUUtilizationPercentage`). Kubernetes
keeps every v2 field a v1 object cannot hold in annotations of the v1 view, so a
v1 client that reads, edits and writes back an object loses nothing; the same
annotation names and the v1 `MetricSpec`/`MetricStatus` shapes are used here:

* `autoscaling.alpha.kubernetes.io/metrics`: the metrics besides the CPU utilisation one;
* `autoscaling.alpha.kubernetes.io/behavior`: `spec.behavior`;
* `autoscaling.alpha.kubernetes.io/current-metrics`: the current metrics besides CPU's;
* `autoscaling.alpha.kubernetes.io/conditions`: `status.conditions`.

Both directions are pure functions of one object and never change their input
(watch streams share the stored object between clients).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from core import errors

Obj = dict[str, Any]

V1, V2 = "autoscaling/v1", "autoscaling/v2"
METRICS = "autoscaling.alpha.kubernetes.io/metrics"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
_ANNOTATIONS = (METRICS, BEHAVIOR, CURRENT_METRICS, CONDITIONS)


def _is_cpu_utilization(metric: Obj) -> bool:
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return (metric.get("type") == "Resource" and resource.get("name") == "cpu"
            and target.get("type") == "Utilization" and target.get("averageUtilization") is not None)


def _is_cpu_current(status: Obj) -> bool:
    resource = status.get("resource") or {}
    return (status.get("type") == "Resource" and resource.get("name") == "cpu"
            and (resource.get("current") or {}).get("averageUtilization") is not None)


def _drop_none(d: Obj) -> Obj:
    return {k: v for k, v in d.items() if v is not None}


# ---- metric specs: v2 <-> v1 shapes -----------------------------------------------------------------
def _spec_to_v1(m: Obj) -> Obj:
    kind = m.get("type")
    out: Obj = {"type": kind}
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        src = m.get(field) or {}
        target = src.get("target") or {}
        out[field] = _drop_none({"name": src.get("name"), "container": src.get("container"),
                                 "targetAverageUtilization": target.get("averageUtilization"),
                                 "targetAverageValue": target.get("averageValue")})
    elif kind == "Pods":
        src = m.get("pods") or {}
        metric, target = src.get("metric") or {}, src.get("target") or {}
        out["pods"] = _drop_none({"metricName": metric.get("name"), "selector": metric.get("selector"),
                                  "targetAverageValue": target.get("averageValue")})
    elif kind == "Object":
        src = m.get("object") or {}
        metric, target = src.get("metric") or {}, src.get("target") or {}
        out["object"] = _drop_none({"target": src.get("describedObject"), "metricName": metric.get("name"),
                                    "selector": metric.get("selector"), "targetValue": target.get("value"),
                                    "averageValue": target.get("averageValue")})
    elif kind == "External":
        src = m.get("external") or {}
        metric, target = src.get("metric") or {}, src.get("target") or {}
        out["external"] = _drop_none({"metricName": metric.get("name"), "metricSelector": metric.get("selector"),
                                      "targetValue": target.get("value"),
                                      "targetAverageValue": target.get("averageValue")})
    return out


def _target(utilization: Any = None, average: Any = None, value: Any = None) -> Obj:
    if utilization is not None:
        return {"type": "Utilization", "averageUtilization": utilization}
    if average is not None:
        return {"type": "AverageValue", "averageValue": average}
    return _drop_none({"type": "Value", "value": value})


def _spec_to_v2(m: Obj) -> Obj:
    kind = m.get("type")
    out: Obj = {"type": kind}
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        src = m.get(field) or {}
        out[field] = _drop_none({"name": src.get("name"), "container": src.get("container"),
                                 "target": _target(src.get("targetAverageUtilization"),
                                                   src.get("targetAverageValue"))})
    elif kind == "Pods":
        src = m.get("pods") or {}
        out["pods"] = {"metric": _drop_none({"name": src.get("metricName"), "selector": src.get("selector")}),
                       "target": _target(average=src.get("targetAverageValue"))}
    elif kind == "Object":
        src = m.get("object") or {}
        out["object"] = _drop_none({
            "describedObject": src.get("target"),
            "metric": _drop_none({"name": src.get("metricName"), "selector": src.get("selector")}),
            "target": _target(average=src.get("averageValue"), value=src.get("targetValue"))})
    elif kind == "External":
        src = m.get("external") or {}
        out["external"] = {
            "metric": _drop_none({"name": src.get("metricName"), "selector": src.get("metricSelector")}),
            "target": _target(average=src.get("targetAverageValue"), value=src.get("targetValue"))}
    return out


# ---- metric statuses: v2 <-> v1 shapes --------------------------------------------------------------
def _status_to_v1(s: Obj) -> Obj:
    kind = s.get("type")
    out: Obj = {"type": kind}
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        src = s.get(field) or {}
        current = src.get("current") or {}
        out[field] = _drop_none({"name": src.get("name"), "container": src.get("container"),
                                 "currentAverageUtilization": current.get("averageUtilization"),
                                 "currentAverageValue": current.get("averageValue")})
    elif kind == "Pods":
        src = s.get("pods") or {}
        metric, current = src.get("metric") or {}, src.get("current") or {}
        out["pods"] = _drop_none({"metricName": metric.get("name"), "selector": metric.get("selector"),
                                  "currentAverageValue": current.get("averageValue")})
    elif kind == "Object":
        src = s.get("object") or {}
        metric, current = src.get("metric") or {}, src.get("current") or {}
        out["object"] = _drop_none({"target": src.get("describedObject"), "metricName": metric.get("name"),
                                    "selector": metric.get("selector"), "currentValue": current.get("value"),
                                    "averageValue": current.get("averageValue")})
    elif kind == "External":
        src = s.get("external") or {}
        metric, current = src.get("metric") or {}, src.get("current") or {}
        out["external"] = _drop_none({"metricName": metric.get("name"), "metricSelector": metric.get("selector"),
                                      "currentValue": current.get("value"),
                                      "currentAverageValue": current.get("averageValue")})
    return out


def _status_to_v2(s: Obj) -> Obj:
    kind = s.get("type")
    out: Obj = {"type": kind}
    if kind in ("Resource", "ContainerResource"):
        field = "resource" if kind == "Resource" else "containerResource"
        src = s.get(field) or {}
        out[field] = _drop_none({"name": src.get("name"), "container": src.get("container"),
                                 "current": _drop_none({"averageUtilization": src.get("currentAverageUtilization"),
                                                        "averageValue": src.get("currentAverageValue")})})
    elif kind == "Pods":
        src = s.get("pods") or {}
        out["pods"] = {"metric": _drop_none({"name": src.get("metricName"), "selector": src.get("selector")}),
                       "current": _drop_none({"averageValue": src.get("currentAverageValue")})}
    elif kind == "Object":
        src = s.get("object") or {}
        out["object"] = _drop_none({
            "describedObject": src.get("target"),
            "metric": _drop_none({"name": src.get("metricName"), "selector": src.get("selector")}),
            "current": _drop_none({"value": src.get("currentValue"), "averageValue": src.get("averageValue")})})
    elif kind == "External":
        src = s.get("external") or {}
        out["external"] = {
            "metric": _drop_none({"name": src.get("metricName"), "selector": src.get("metricSelector")}),
            "current": _drop_none({"value": src.get("currentValue"),
                                   "averageValue": src.get("currentAverageValue")})}
    return out


# ---- whole objects ----------------------------------------------------------------------------------
class HpaConversion:
    """autoscaling/v1 as a view of the stored autoscaling/v2 object (`ResourceType.conversion`)."""

    storage_version = V2

    def from_storage(self, obj: Obj) -> Obj:
        """The v1 view of a stored (v2) object."""
        out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
        out["apiVersion"] = V1
        meta = out.setdefault("metadata", {})
        annotations = dict(meta.get("annotations") or {})
        spec, status = obj.get("spec") or {}, obj.get("status")
        v1spec: Obj = {k: copy.deepcopy(spec[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas")
                       if k in spec}
        others = []
        for m in spec.get("metrics") or []:
            if _is_cpu_utilization(m) and "targetCPUUtilizationPercentage" not in v1spec:
                v1spec["targetCPUUtilizationPercentage"] = m["resource"]["target"]["averageUtilization"]
            else:
                others.append(_spec_to_v1(m))
        if others:
            annotations[METRICS] = json.dumps(others, separators=(",", ":"))
        if spec.get("behavior") is not None:
            annotations[BEHAVIOR] = json.dumps(spec["behavior"], separators=(",", ":"))
        out["spec"] = v1spec
        if status is not None:
            v1status: Obj = {k: copy.deepcopy(status[k]) for k in
                             ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                             if k in status}
            v1status.setdefault("currentReplicas", 0)
            v1status.setdefault("desiredReplicas", 0)
            current = []
            for s in status.get("currentMetrics") or []:
                if _is_cpu_current(s) and "currentCPUUtilizationPercentage" not in v1status:
                    v1status["currentCPUUtilizationPercentage"] = s["resource"]["current"]["averageUtilization"]
                else:
                    current.append(_status_to_v1(s))
            if current:
                annotations[CURRENT_METRICS] = json.dumps(current, separators=(",", ":"))
            if status.get("conditions"):
                annotations[CONDITIONS] = json.dumps(status["conditions"], separators=(",", ":"))
            out["status"] = v1status
        if annotations:
            meta["annotations"] = annotations
        return out

    def to_storage(self, obj: Obj) -> Obj:
        """The stored (v2) form of a v1 object a client sent; the annotations go back into fields."""
        out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
        out["apiVersion"] = V2
        meta = out.get("metadata")
        annotations = dict(meta.get("annotations") or {}) if isinstance(meta, dict) else {}
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise errors.BadRequest(message="spec must be an object")
        v2spec: Obj = {k: copy.deepcopy(spec[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas")
                       if k in spec}
        metrics: list[Obj] = []
        cpu = spec.get("targetCPUUtilizationPercentage")
        if cpu is not None:
            metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": cpu}}})
        metrics += [_spec_to_v2(m) for m in _annotation_list(annotations.pop(METRICS, None), METRICS)]
        if metrics:
            v2spec["metrics"] = metrics
        behavior = annotations.pop(BEHAVIOR, None)
        if behavior is not None:
            v2spec["behavior"] = _annotation_json(behavior, BEHAVIOR)
        out["spec"] = v2spec
        status = obj.get("status")
        current_annotation = annotations.pop(CURRENT_METRICS, None)
        conditions_annotation = annotations.pop(CONDITIONS, None)
        if isinstance(status, dict):
            v2status: Obj = {k: copy.deepcopy(status[k]) for k in
                             ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas")
                             if k in status}
            current: list[Obj] = []
            if status.get("currentCPUUtilizationPercentage") is not None:
                current.append({"type": "Resource", "resource": {"name": "cpu", "current": {
                    "averageUtilization": status["currentCPUUtilizationPercentage"]}}})
            current += [_status_to_v2(s) for s in _annotation_list(current_annotation, CURRENT_METRICS)]
            if current:
                v2status["currentMetrics"] = current
            if conditions_annotation is not None:
                v2status["conditions"] = _annotation_list(conditions_annotation, CONDITIONS)
            out["status"] = v2status
        if isinstance(meta, dict):
            if annotations:
                meta["annotations"] = annotations
            else:
                meta.pop("annotations", None)
        return out


def _annotation_json(text: Any, name: str) -> Any:
    if not isinstance(text, str):
        raise errors.BadRequest(message=f"annotation {name} must be a string")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise errors.BadRequest(message=f"annotation {name} is not valid JSON: {exc}") from None


def _annotation_list(text: Any, name: str) -> list[Obj]:
    if text is None:
        return []
    value = _annotation_json(text, name)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise errors.BadRequest(message=f"annotation {name} must hold a JSON list of objects")
    return value
