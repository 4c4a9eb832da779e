"""Rules of the workload kinds (Deployment, ReplicaSet, DaemonSet, Job): defaults and selectors."""

from __future__ import annotations

from typing import Any

from core.errors import Cause
from core.kube import intstr
from core.kube.selectors import LabelSelector
from master.registry.pods import default_pod_spec, validate_pod_spec
from master.registry.resource import Context, Strategy

Obj = dict[str, Any]


def _template_causes(spec: Obj, restart_policies: tuple[str, ...], check_selector: bool = True) -> list[Cause]:
    causes: list[Cause] = []
    template = spec.get("template")
    if not isinstance(template, dict):
        return [Cause("spec.template", "Required value", "FieldValueRequired")]
    labels = (template.get("metadata") or {}).get("labels") or {}
    if check_selector:
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (selector.get("matchLabels") or
                                                  selector.get("matchExpressions")):
            causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
        else:
            try:
                matches = LabelSelector.from_dict(selector).matches(labels)
            except ValueError as exc:
                causes.append(Cause("spec.selector", f"Invalid value: {exc}"))
            else:
                if not matches:
                    causes.append(Cause("spec.template.metadata.labels",
                                        f"Invalid value: {_go_map(labels)}: `selector` does not match "
                                        "template `labels`"))
    causes += validate_pod_spec(template.get("spec"), "spec.template.spec")
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy not in restart_policies:
        causes.append(Cause("spec.template.spec.restartPolicy",
                            f'Unsupported value: "{policy}": supported values: '
                            + ", ".join(f'"{p}"' for p in restart_policies), "FieldValueNotSupported"))
    return causes


def _go_map(labels: dict[str, Any]) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return "map[string]string{" + inner + "}"


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        tspec = template.setdefault("spec", {})
        if isinstance(tspec, dict):
            default_pod_spec(tspec)
        template.setdefault("metadata", {})


def _int_or_percent(value: Any, path: str) -> list[Cause]:
    try:
        intstr.scaled_value(value, 100, True)
    except (ValueError, TypeError):
        return [Cause(path, f'Invalid value: "{value}": a valid percent string must be a numeric string '
                      "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                      "'[0-9]+%')")]
    return []


class _Workload(Strategy):
    has_status = True
    restart_policies: tuple[str, ...] = ("Always",)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        causes = _template_causes(spec, self.restart_policies)
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            causes.append(Cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or "
                                "equal to 0"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
            return [Cause("spec.selector", f"Invalid value: {_selector_text(new)}: field is immutable")]
        return []


def _selector_text(obj: Obj) -> str:
    sel = (obj.get("spec") or {}).get("selector") or {}
    labels = sel.get("matchLabels") or {}
    return "v1.LabelSelector{MatchLabels:" + _go_map(labels) + ", MatchExpressions:[]}"


class DeploymentStrategy(_Workload):
    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                if isinstance(ru, dict):
                    ru.setdefault("maxSurge", "25%")
                    ru.setdefault("maxUnavailable", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        ru = ((obj.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
        for key in ("maxSurge", "maxUnavailable"):
            if key in ru:
                causes += _int_or_percent(ru[key], f"spec.strategy.rollingUpdate.{key}")
        if ru and intstr_zero(ru.get("maxSurge")) and intstr_zero(ru.get("maxUnavailable")):
            causes.append(Cause("spec.strategy.rollingUpdate.maxUnavailable",
                                "Invalid value: 0: may not be 0 when `maxSurge` is 0"))
        return causes


def intstr_zero(value: Any) -> bool:
    return value in (0, "0", "0%")


class ReplicaSetStrategy(_Workload):
    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            _default_template(spec)


class DaemonSetStrategy(_Workload):
    def initial_status(self, obj: Obj) -> Obj:
        # Required by the DaemonSetStatus schema, as a real cluster sends them.
        return {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0,
                "numberReady": 0}

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        strategy = spec.setdefault("updateStrategy", {})
        if isinstance(strategy, dict):
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                if isinstance(ru, dict):
                    ru.setdefault("maxUnavailable", 1)
                    ru.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        _default_template(spec)


class JobStrategy(_Workload):
    restart_policies = ("OnFailure", "Never")

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        _default_template(spec)

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("manualSelector"):
            return
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        template = spec.get("template")
        if isinstance(template, dict):
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            labels.update({"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                           "batch.kubernetes.io/job-name": name, "job-name": name})

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        spec = obj.get("spec") or {}
        for key in ("completions", "parallelism", "backoffLimit", "activeDeadlineSeconds",
                    "ttlSecondsAfterFinished"):
            value = spec.get(key)
            if value is not None and (not isinstance(value, int) or value < 0):
                causes.append(Cause(f"spec.{key}", f"Invalid value: {value}: must be greater than or "
                                    "equal to 0"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = super().validate_update(new, old)
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            causes.append(Cause("spec.template", "Invalid value: field is immutable"))
        if (new.get("spec") or {}).get("completions") != (old.get("spec") or {}).get("completions"):
            causes.append(Cause("spec.completions", "Invalid value: field is immutable"))
        return causes
