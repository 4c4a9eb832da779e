"""Pod rules: defaults Kubernetes fills in, what a valid pod spec is, what may change later."""

from __future__ import annotations

import copy
from typing import Any

from core.errors import Cause
from core.kube import quantity, validation
from master.registry import serviceaccounts, volumes
from master.registry.resource import Context, Strategy

Obj = dict[str, Any]

# How long pods tolerate a NotReady/unreachable node before the node lifecycle
# controller evicts them (Kubernetes' DefaultTolerationSeconds admission adds 300 s;
# pikube's default is 30 s so a lost board's work moves within a minute).
DEFAULT_TOLERATION_SECONDS = 30
_NODE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def default_container(c: Obj) -> None:
    image = str(c.get("image", ""))
    if "imagePullPolicy" not in c:
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        latest = image.endswith(":latest") or not tagged
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_name)
        if isinstance(probe, dict):
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)
            http = probe.get("httpGet")
            if isinstance(http, dict):
                http.setdefault("path", "/")
                http.setdefault("scheme", "HTTP")


def default_pod_spec(spec: Obj, toleration_seconds: int | None = None) -> None:
    """Defaults of a PodSpec (also used inside workload templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if isinstance(c, dict):
            default_container(c)
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            volumes.default_volume(v)
    if toleration_seconds is not None:
        tolerations = spec.setdefault("tolerations", [])
        if isinstance(tolerations, list):
            for key in _NODE_TAINTS:
                covered = any((isinstance(t, dict) and t.get("key") == key) or
                              (isinstance(t, dict) and t.get("operator") == "Exists" and not t.get("key"))
                              for t in tolerations)
                if not covered:
                    tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                        "tolerationSeconds": toleration_seconds})


def _container_causes(c: Any, path: str, names: set[str]) -> list[Cause]:
    if not isinstance(c, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes: list[Cause] = []
    name = c.get("name")
    if not name:
        causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
    else:
        causes += validation.dns1123_label(str(name), f"{path}.name")
        if name in names:
            causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
        names.add(str(name))
    if not c.get("image"):
        causes.append(Cause(f"{path}.image", "Required value", "FieldValueRequired"))
    for i, port in enumerate(c.get("ports") or []):
        p = port.get("containerPort") if isinstance(port, dict) else None
        if not isinstance(p, int) or not 1 <= p <= 65535:
            causes.append(Cause(f"{path}.ports[{i}].containerPort",
                                f"Invalid value: {p}: must be between 1 and 65535, inclusive"))
        proto = port.get("protocol", "TCP") if isinstance(port, dict) else "TCP"
        if proto not in ("TCP", "UDP", "SCTP"):
            causes.append(Cause(f"{path}.ports[{i}].protocol",
                                f'Unsupported value: "{proto}": supported values: "SCTP", "TCP", "UDP"',
                                "FieldValueNotSupported"))
    policy = c.get("imagePullPolicy")
    if policy not in ("Always", "IfNotPresent", "Never"):
        causes.append(Cause(f"{path}.imagePullPolicy",
                            f'Unsupported value: "{policy}": supported values: "Always", "IfNotPresent", '
                            '"Never"', "FieldValueNotSupported"))
    res = c.get("resources") or {}
    for section in ("limits", "requests"):
        for rname, value in (res.get(section) or {}).items() if isinstance(res, dict) else []:
            try:
                if quantity.parse_quantity(value) < 0:
                    raise ValueError
            except (ValueError, TypeError):
                causes.append(Cause(f"{path}.resources.{section}[{rname}]",
                                    f'Invalid value: "{value}": quantities must match the regular '
                                    "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
    for i, env in enumerate(c.get("env") or []):
        if not isinstance(env, dict) or not env.get("name"):
            causes.append(Cause(f"{path}.env[{i}].name", "Required value", "FieldValueRequired"))
    return causes


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause(path, "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        causes.append(Cause(f"{path}.containers", "Required value", "FieldValueRequired"))
        containers = []
    names: set[str] = set()
    for i, c in enumerate(spec.get("initContainers") or []):
        causes += _container_causes(c, f"{path}.initContainers[{i}]", names)
    for i, c in enumerate(containers):
        causes += _container_causes(c, f"{path}.containers[{i}]", names)
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(Cause(f"{path}.restartPolicy",
                            f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", '
                            '"Never"', "FieldValueNotSupported"))
    names_seen: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or []):
        vname = v.get("name") if isinstance(v, dict) else None
        if not vname:
            causes.append(Cause(f"{path}.volumes[{i}].name", "Required value", "FieldValueRequired"))
            continue
        causes += validation.dns1123_label(str(vname), f"{path}.volumes[{i}].name")
        if str(vname) in names_seen:
            causes.append(validation.duplicate(f"{path}.volumes[{i}].name", vname))
        names_seen.add(str(vname))
        causes += volumes.volume_causes(v, f"{path}.volumes[{i}]")
    for ci, c in enumerate(containers):
        for mi, m in enumerate((c.get("volumeMounts") or []) if isinstance(c, dict) else []):
            if isinstance(m, dict) and m.get("name") not in names_seen:
                causes.append(Cause(f"{path}.containers[{ci}].volumeMounts[{mi}].name",
                                    f'Not found: "{m.get("name")}"', "FieldValueNotFound"))
            if isinstance(m, dict) and not m.get("mountPath"):
                causes.append(Cause(f"{path}.containers[{ci}].volumeMounts[{mi}].mountPath",
                                    "Required value", "FieldValueRequired"))
    return causes


def _strip_mutable(spec: Obj) -> Obj:
    """A pod spec without the fields Kubernetes lets an update change."""
    s = copy.deepcopy(spec)
    for c in (s.get("containers") or []) + (s.get("initContainers") or []):
        if isinstance(c, dict):
            c.pop("image", None)
    s.pop("activeDeadlineSeconds", None)
    s.pop("tolerations", None)
    s.pop("nodeName", None)
    return s


class PodStrategy(Strategy):
    has_status = True

    def __init__(self, toleration_seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
        self.toleration_seconds = toleration_seconds

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            default_pod_spec(spec, self.toleration_seconds)
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("priority", 0)

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Pending", "qosClass": qos_class(obj.get("spec", {}))}

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        serviceaccounts.admit_pod(obj, ctx)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return False  # pods carry no generation-driven controller

    def validate(self, obj: Obj) -> list[Cause]:
        return validate_pod_spec(obj.get("spec"), "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        if old.get("spec", {}).get("nodeName") and ns.get("nodeName") != os_.get("nodeName"):
            return [Cause("spec.nodeName", "Invalid value: field is immutable once the pod is bound")]
        if _strip_mutable(ns) != _strip_mutable(os_):
            return [Cause("spec", "Forbidden: pod updates may not change fields other than "
                                  "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                                  "`spec.activeDeadlineSeconds` or `spec.tolerations` (only additions "
                                  "to existing tolerations)", "FieldValueForbidden")]
        return []


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    any_set = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class BindingTarget:
    """Reads the node name out of a Binding body."""

    @staticmethod
    def node_name(binding: Obj) -> str:
        target = binding.get("target") if isinstance(binding, dict) else None
        name = target.get("name") if isinstance(target, dict) else None
        return str(name or "")
