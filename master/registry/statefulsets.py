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
from master.registry.workloads import _default_template, _Workload

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
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                ru = strategy.setdefault("rollingUpdate", {})
                if isinstance(ru, dict):
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
        causes = super().validate(_with_claim_volumes(obj))
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return causes
        if spec.get("podManagementPolicy") not in POLICIES:
            causes.append(validation.not_supported("spec.podManagementPolicy", spec.get("podManagementPolicy"),
                                                   POLICIES))
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") not in STRATEGIES:
            causes.append(validation.not_supported("spec.updateStrategy.type", strategy.get("type"), STRATEGIES))
        partition = (strategy.get("rollingUpdate") or {}).get("partition")
        if partition is not None and (not isinstance(partition, int) or partition < 0):
            causes.append(validation.invalid("spec.updateStrategy.rollingUpdate.partition", partition,
                                             "must be greater than or equal to 0"))
        if strategy.get("type") == "OnDelete" and strategy.get("rollingUpdate"):
            causes.append(validation.invalid("spec.updateStrategy.rollingUpdate", strategy["rollingUpdate"],
                                             "only allowed for updateStrategy 'RollingUpdate'"))
        retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        for key in ("whenDeleted", "whenScaled"):
            if retention.get(key) not in RETENTION:
                causes.append(validation.not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{key}",
                                                       retention.get(key), RETENTION))
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
        revision = obj.get("revision")
        if not isinstance(revision, int) or revision < 0:
            return [validation.invalid("revision", revision, "must be greater than or equal to 0")]
        return []

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
