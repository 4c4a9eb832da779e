"""HorizontalPodAutoscaler's rules: autoscaling/v2 defaults and validation, with Kubernetes' field errors.

The stored form is autoscaling/v2 (master/registry/hpaversions.py makes the v1
view), so these rules see v2 objects whichever version a client wrote.
Defaults as Kubernetes' v2 defaulting: `minReplicas` 1, a CPU utilisation
target of 80 % when no metric is given, and a `behavior` that is given gets the
default scale-up and scale-down rules filled in where it says nothing (the
scale-down stabilisation window stays unset: the controller's own default,
5 minutes, applies).
"""

from __future__ import annotations

from typing import Any

from core.errors import Cause
from core.kube.quantity import parse_quantity
from master.registry.resource import Strategy

Obj = dict[str, Any]

METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
DEFAULT_CPU_UTILIZATION = 80
MAX_STABILIZATION_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800


def default_scale_up() -> Obj:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def default_scale_down() -> Obj:
    return {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill_rules(rules: Any, defaults: Obj) -> Obj:
    if not isinstance(rules, dict):
        return defaults
    out = dict(rules)
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = value
    return out


def _int_at_least(value: Any, path: str, least: int, message: str) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [Cause(path, f"Invalid value: {value!r}: must be an integer")]
    if value < least:
        return [Cause(path, f"Invalid value: {value}: {message}")]
    return []


def _positive_quantity(value: Any, path: str) -> list[Cause]:
    if value is None:
        return []
    try:
        ok = parse_quantity(value) > 0
    except (ValueError, TypeError, ArithmeticError):
        return [Cause(path, f"Invalid value: {value!r}: quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    return [] if ok else [Cause(path, f'Invalid value: "{value}": must be positive')]


def _target_causes(target: Any, path: str, utilization_allowed: bool) -> list[Cause]:
    if not isinstance(target, dict) or not target.get("type"):
        return [Cause(f"{path}.type", "Required value: must specify a metric target type", "FieldValueRequired")]
    causes: list[Cause] = []
    kind = target["type"]
    if kind not in ("Utilization", "Value", "AverageValue"):
        causes.append(Cause(f"{path}.type", f'Invalid value: "{kind}": must be either Utilization, Value, '
                                            "or AverageValue"))
    causes += _int_at_least(target.get("averageUtilization"), f"{path}.averageUtilization", 1,
                            "must be greater than 0")
    causes += _positive_quantity(target.get("value"), f"{path}.value")
    causes += _positive_quantity(target.get("averageValue"), f"{path}.averageValue")
    if utilization_allowed:
        if target.get("averageUtilization") is None and target.get("averageValue") is None:
            causes.append(Cause(f"{path}.averageUtilization", "Required value: must set either a target raw "
                                "value or a target utilization", "FieldValueRequired"))
        elif target.get("averageUtilization") is not None and target.get("averageValue") is not None:
            causes.append(Cause(f"{path}.averageValue", f'Invalid value: "{target["averageValue"]}": may not '
                                "set both a target raw value and a target utilization"))
    return causes


def _metric_name_causes(metric: Any, path: str) -> list[Cause]:
    if not isinstance(metric, dict) or not metric.get("name"):
        return [Cause(f"{path}.name", "Required value: must specify a metric name", "FieldValueRequired")]
    return []


def _metric_causes(m: Any, path: str) -> list[Cause]:
    if not isinstance(m, dict):
        return [Cause(path, "Invalid value: must be an object")]
    kind = m.get("type")
    if not kind:
        return [Cause(f"{path}.type", "Required value: must specify a metric source type", "FieldValueRequired")]
    if kind not in METRIC_TYPES:
        return [Cause(f"{path}.type", f'Unsupported value: "{kind}": supported values: '
                                      + ", ".join(f'"{t}"' for t in METRIC_TYPES), "FieldValueNotSupported")]
    field = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
             "Object": "object", "External": "external"}[kind]
    src = m.get(field)
    if not isinstance(src, dict):
        return [Cause(f"{path}.{field}", "Required value: must populate information for the given metric "
                                         "source", "FieldValueRequired")]
    causes = [Cause(f"{path}.{other}", "Forbidden: must populate the given metric source only", "FieldValueForbidden")
              for other in ("resource", "containerResource", "pods", "object", "external")
              if other != field and m.get(other) is not None]
    sub = f"{path}.{field}"
    if kind in ("Resource", "ContainerResource"):
        if not src.get("name"):
            causes.append(Cause(f"{sub}.name", "Required value: must specify a resource name", "FieldValueRequired"))
        if kind == "ContainerResource" and not src.get("container"):
            causes.append(Cause(f"{sub}.container", "Required value: must specify a container",
                                "FieldValueRequired"))
        causes += _target_causes(src.get("target"), f"{sub}.target", True)
    else:
        causes += _metric_name_causes(src.get("metric"), f"{sub}.metric")
        if kind == "Object":
            described = src.get("describedObject")
            if not isinstance(described, dict) or not described.get("kind") or not described.get("name"):
                causes.append(Cause(f"{sub}.describedObject", "Required value: must specify the kind and name "
                                    "of the described object", "FieldValueRequired"))
        causes += _target_causes(src.get("target"), f"{sub}.target", False)
    return causes


def _rules_causes(rules: Any, path: str) -> list[Cause]:
    if rules is None:
        return []
    if not isinstance(rules, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes: list[Cause] = []
    window = rules.get("stabilizationWindowSeconds")
    causes += _int_at_least(window, f"{path}.stabilizationWindowSeconds", 0, "must be greater than or equal to zero")
    if isinstance(window, int) and window > MAX_STABILIZATION_SECONDS:
        causes.append(Cause(f"{path}.stabilizationWindowSeconds",
                            f"Invalid value: {window}: must be less than or equal to {MAX_STABILIZATION_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Max", "Min", "Disabled"):
        causes.append(Cause(f"{path}.selectPolicy", f'Unsupported value: "{select}": supported values: '
                            '"Disabled", "Max", "Min"', "FieldValueNotSupported"))
    policies = rules.get("policies")
    if not isinstance(policies, list) or not policies:
        causes.append(Cause(f"{path}.policies", "Required value: must specify at least one Policy",
                            "FieldValueRequired"))
        return causes
    for i, p in enumerate(policies):
        pp = f"{path}.policies[{i}]"
        if not isinstance(p, dict):
            causes.append(Cause(pp, "Invalid value: must be an object"))
            continue
        if p.get("type") not in ("Pods", "Percent"):
            causes.append(Cause(f"{pp}.type", f'Unsupported value: "{p.get("type")}": supported values: '
                                '"Percent", "Pods"', "FieldValueNotSupported"))
        causes += _int_at_least(p.get("value"), f"{pp}.value", 1, "must be greater than zero")
        if p.get("value") is None:
            causes.append(Cause(f"{pp}.value", "Required value", "FieldValueRequired"))
        period = p.get("periodSeconds")
        causes += _int_at_least(period, f"{pp}.periodSeconds", 1, "must be greater than zero")
        if period is None:
            causes.append(Cause(f"{pp}.periodSeconds", "Required value", "FieldValueRequired"))
        elif isinstance(period, int) and period > MAX_PERIOD_SECONDS:
            causes.append(Cause(f"{pp}.periodSeconds",
                                f"Invalid value: {period}: must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return causes


class HorizontalPodAutoscalerStrategy(Strategy):
    has_status = True

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        if spec.get("minReplicas") is None:
            spec["minReplicas"] = 1
        if not spec.get("metrics"):
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):
            behavior["scaleUp"] = _fill_rules(behavior.get("scaleUp"), default_scale_up())
            behavior["scaleDown"] = _fill_rules(behavior.get("scaleDown"), default_scale_down())

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        causes: list[Cause] = []
        ref = spec.get("scaleTargetRef")
        if not isinstance(ref, dict):
            ref = {}
        for key in ("kind", "name"):
            value = ref.get(key)
            if not value:
                causes.append(Cause(f"spec.scaleTargetRef.{key}", "Required value", "FieldValueRequired"))
            elif not isinstance(value, str) or "/" in value or "%" in value or value in (".", ".."):
                causes.append(Cause(f"spec.scaleTargetRef.{key}", f"Invalid value: {value!r}: may not contain '/' "
                                    "or '%' nor be '.' or '..'"))
        low, high = spec.get("minReplicas"), spec.get("maxReplicas")
        causes += _int_at_least(low, "spec.minReplicas", 1, "must be greater than or equal to 1")
        if high is None:
            causes.append(Cause("spec.maxReplicas", "Required value", "FieldValueRequired"))
        causes += _int_at_least(high, "spec.maxReplicas", 1, "must be greater than 0")
        if isinstance(low, int) and isinstance(high, int) and high < low:
            causes.append(Cause("spec.maxReplicas", f"Invalid value: {high}: must be greater than or equal to "
                                "`minReplicas`"))
        metrics = spec.get("metrics")
        if metrics is not None and not isinstance(metrics, list):
            causes.append(Cause("spec.metrics", "Invalid value: must be a list"))
        for i, m in enumerate(metrics if isinstance(metrics, list) else []):
            causes += _metric_causes(m, f"spec.metrics[{i}]")
        behavior = spec.get("behavior")
        if behavior is not None:
            if not isinstance(behavior, dict):
                causes.append(Cause("spec.behavior", "Invalid value: must be an object"))
            else:
                causes += _rules_causes(behavior.get("scaleUp"), "spec.behavior.scaleUp")
                causes += _rules_causes(behavior.get("scaleDown"), "spec.behavior.scaleDown")
        return causes

    def initial_status(self, obj: Obj) -> Obj:
        return {"desiredReplicas": 0}
