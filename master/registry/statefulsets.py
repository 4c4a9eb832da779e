"""apps/v1 StatefulSet and ControllerRevision: Kubernetes' defaults, validation and what an update may change.

A StatefulSet defaults to one replica, `OrderedReady` pod management, a
`RollingUpdate` strategy with partition 0, ten revisions of history and claims
retained whatever happens (`persistentVolumeClaimRetentionPolicy` Retain /
Retain); its claim templates get `volumeMode: Filesystem`. The selector must
select the template's labels; after creation only `replicas`, `ordinals`,
`template`, `updateStrategy`, `persistentVolumeClaimRetentionPolicy`,
`minReadySeconds` and `revisionHistoryLimit` may change, refused otherwise in
Kubernetes' words. A ControllerRevision's `data` is immutable.
"""

from __future__ import annotations

from typing import Any

from core.errors import Cause
from core.kube import validation
from master.registry.resource import Strategy
from master.registry.tables import AGE, NAME, Column, TableDef, containers_cell, images_cell
from master.registry.workloads import _default_template, _template_causes, _Workload

Obj = dict[str, Any]
POLICIES = ("OrderedReady", "Parallel")
STRATEGIES = ("RollingUpdate", "OnDelete")
RETENTION = ("Retain", "Delete")
_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds", "revisionHistoryLimit")
_FORBIDDEN = ("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
              "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
              "are forbidden")


class StatefulSetStrategy(_Workload):
    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        strategy = spec.setdefault("updateStrategy", {})
        if isinstance(strategy, dict):
            if not strategy.get("type"):  # as Kubernetes: a rollingUpdate only for a defaulted type
                strategy["type"] = "RollingUpdate"
                strategy.setdefault("rollingUpdate", {})
            ru = strategy.get("rollingUpdate")
            if strategy["type"] == "RollingUpdate" and isinstance(ru, dict):
                ru.setdefault("partition", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        if isinstance(retention, dict):
            retention.setdefault("whenDeleted", "Retain")
            retention.setdefault("whenScaled", "Retain")
        for claim in spec.get("volumeClaimTemplates") or []:
            if isinstance(claim, dict):
                claim.setdefault("apiVersion", "v1")
                claim.setdefault("kind", "PersistentVolumeClaim")
                cspec = claim.setdefault("spec", {})
                if isinstance(cspec, dict):
                    cspec.setdefault("volumeMode", "Filesystem")
                claim.setdefault("status", {"phase": "Pending"})
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [validation.required("spec")]
        causes: list[Cause] = []
        if spec.get("podManagementPolicy") not in POLICIES:
            causes.append(validation.invalid("spec.podManagementPolicy", spec.get("podManagementPolicy"),
                                             "must be 'OrderedReady' or 'Parallel'"))
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") not in STRATEGIES:
            causes.append(Cause("spec.updateStrategy", f"Invalid value: {_go_strategy(strategy)}: must be "
                                "'RollingUpdate' or 'OnDelete'", validation.INVALID))
        if strategy.get("type") == "OnDelete" and strategy.get("rollingUpdate") is not None:
            causes.append(Cause("spec.updateStrategy.rollingUpdate", "Invalid value: "
                                f"{_go_rolling_value(strategy['rollingUpdate'])}: only allowed for updateStrategy "
                                "'RollingUpdate'", validation.INVALID))
        partition = (strategy.get("rollingUpdate") or {}).get("partition")
        if partition is not None and (not isinstance(partition, int) or partition < 0):
            causes.append(validation.invalid("spec.updateStrategy.rollingUpdate.partition", partition,
                                             "must be greater than or equal to 0"))
        retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for key in ("whenDeleted", "whenScaled"):
            if retention.get(key) not in RETENTION:
                causes.append(validation.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                                                       retention.get(key), RETENTION))
        for field, value in (("spec.replicas", spec.get("replicas")),
                             ("spec.minReadySeconds", spec.get("minReadySeconds")),
                             ("spec.ordinals.start", (spec.get("ordinals") or {}).get("start"))):
            if value is not None and (not isinstance(value, int) or value < 0):
                causes.append(validation.invalid(field, value, "must be greater than or equal to 0"))
        selector = spec.get("selector")
        empty = isinstance(selector, dict) and not (selector.get("matchLabels") or selector.get("matchExpressions"))
        if empty:
            causes.append(Cause("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                                "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
                                "statefulset", validation.INVALID))
        causes += _template_causes(_with_claim_volumes(obj)["spec"], ("Always",), check_selector=not empty)
        if ((spec.get("template") or {}).get("spec") or {}).get("activeDeadlineSeconds") is not None:
            causes.append(validation.forbidden("spec.template.spec.activeDeadlineSeconds",
                                               "activeDeadlineSeconds in StatefulSet is not Supported"))
        service = spec.get("serviceName")
        if service:
            causes += validation.dns1123_label(str(service), "spec.serviceName")
        names = set()
        for i, claim in enumerate(spec.get("volumeClaimTemplates") or []):
            field = f"spec.volumeClaimTemplates[{i}]"
            name = ((claim or {}).get("metadata") or {}).get("name")
            if not name:
                causes.append(validation.required(f"{field}.metadata.name"))
                continue
            if name in names:
                causes.append(validation.duplicate(f"{field}.metadata.name", name))
            names.add(name)
            cspec = (claim or {}).get("spec") or {}
            if not cspec.get("accessModes"):
                causes.append(validation.required(f"{field}.spec.accessModes",
                                                  "at least 1 access mode is required"))
            if "storage" not in ((cspec.get("resources") or {}).get("requests") or {}):
                causes.append(validation.required(f"{field}.spec.resources[storage]"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        rest = {k: v for k, v in spec.items() if k not in _MUTABLE}
        old_rest = {k: v for k, v in old_spec.items() if k not in _MUTABLE}
        for claims in (rest, old_rest):  # their defaulted status is not part of the spec
            claims["volumeClaimTemplates"] = [{k: v for k, v in c.items() if k != "status"}
                                              for c in claims.get("volumeClaimTemplates") or [] if isinstance(c, dict)]
        if rest != old_rest:
            return [Cause("spec", _FORBIDDEN.removeprefix("spec: "), "FieldValueForbidden")]
        return []


# How Go prints these values in a field error (%#v; a pointer inside a struct prints as an address).
_ADDRESS = "(0xc000010000)"


def _go_rolling(rolling: Any) -> str:
    return "(*apps.RollingUpdateStatefulSetStrategy)" + ("(nil)" if rolling is None else _ADDRESS)


def _go_rolling_value(rolling: Obj) -> str:
    partition = rolling.get("partition") or 0
    unavailable = "(nil)" if rolling.get("maxUnavailable") is None else _ADDRESS
    return (f"apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, "
            f"MaxUnavailable:(*intstr.IntOrString){unavailable}}}")


def _go_strategy(strategy: Obj) -> str:
    kind = str(strategy.get("type") or "").replace("\\", "\\\\").replace('"', '\\"')
    rolling = _go_rolling(strategy.get("rollingUpdate"))
    return f'apps.StatefulSetUpdateStrategy{{Type:"{kind}", RollingUpdate:{rolling}}}'


def _with_claim_volumes(obj: Obj) -> Obj:
    """The set as its pods will be: each claim template is a volume of that name (mounts may name them)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return obj
    names = [str(((c or {}).get("metadata") or {}).get("name") or "") for c in spec.get("volumeClaimTemplates") or []
             if isinstance(c, dict)]
    volumes = [v for v in template["spec"].get("volumes") or [] if not (isinstance(v, dict) and v.get("name") in names)]
    volumes += [{"name": n, "persistentVolumeClaim": {"claimName": n}} for n in names if n]
    return {**obj, "spec": {**spec, "template": {**template, "spec": {**template["spec"], "volumes": volumes}}}}


class ControllerRevisionStrategy(Strategy):
    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        if obj.get("data") is None:
            causes.append(validation.required("data", "data is mandatory"))
        revision = obj.get("revision")
        if not isinstance(revision, int) or revision < 0:
            causes.append(validation.invalid("revision", revision, "must be greater than or equal to 0"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("data") != old.get("data"):
            return [validation.invalid("data", "", "field is immutable")]
        return []


def _ready(o: Obj, _now: Any) -> str:
    status = o.get("status") or {}
    return f"{int(status.get('readyReplicas') or 0)}/{int((o.get('spec') or {}).get('replicas') or 0)}"


def _controller(o: Obj, _now: Any) -> str:
    for ref in (o.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            group = str(ref.get("apiVersion") or "").partition("/")[0] if "/" in str(ref.get("apiVersion")) else ""
            kind = str(ref.get("kind") or "").lower()
            return f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return "<none>"


TABLE = TableDef((
    NAME,
    Column("Ready", _ready, description="Number of the pods ready out of those wanted."),
    AGE,
    Column("Containers", containers_cell(("spec", "template", "spec")), priority=1,
           description="Names of each container in the template."),
    Column("Images", images_cell(("spec", "template", "spec")), priority=1,
           description="Images referenced by each container in the template."),
))

REVISION_TABLE = TableDef((
    NAME,
    Column("Controller", _controller, description="The controller of the revision."),
    Column("Revision", lambda o, n: o.get("revision"), type="integer", description="The revision number."),
    AGE,
))
