"""The storage kinds' rules: PersistentVolume, PersistentVolumeClaim (core/v1) and StorageClass (storage.k8s.io/v1).

Defaults, validation and what an update may change are Kubernetes' and worded
as its API server words them. Two admission steps Kubernetes runs as plugins
sit here too: a claim that names no class gets the default class
(`storageclass.kubernetes.io/is-default-class: "true"`; the newest when
several are marked), and claims and volumes carry the protection finalizers
(`kubernetes.io/pvc-protection`, `kubernetes.io/pv-protection`) that keep
them while a pod uses them (master/controllers/volumes/ removes them).

Capacity is recorded, not enforced: a local-path volume is a directory on the
board, as large as the disk it sits on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import Cause
from core.kube import quantity, validation
from master.registry.resource import Context, Strategy
from master.registry.tables import AGE, NAME, Column, TableDef

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_SHORT_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
VOLUME_MODES = ("Block", "Filesystem")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
# The volume sources a PersistentVolume may name; pikube's agents mount hostPath and local ones.
PV_SOURCES = ("hostPath", "local", "nfs", "iscsi", "csi", "cephfs", "rbd", "fc", "flexVolume", "glusterfs",
              "azureFile", "azureDisk", "vsphereVolume", "portworxVolume", "scaleIO", "storageos",
              "gcePersistentDisk", "awsElasticBlockStore", "cinder", "flocker", "quobyte", "photonPersistentDisk")


def is_default_class(sc: Obj) -> bool:
    annotations = (sc.get("metadata") or {}).get("annotations") or {}
    return "true" in (annotations.get(DEFAULT_CLASS_ANNOTATION), annotations.get(BETA_DEFAULT_CLASS_ANNOTATION))


def default_class(ctx: Context) -> str | None:
    """The name of the default StorageClass (the newest of several, as Kubernetes picks), or None."""
    classes, _ = ctx.store.list("/storage.k8s.io/storageclasses/")
    marked = [c for c in classes if is_default_class(c)]
    if not marked:
        return None
    newest = max(marked, key=lambda c: (str(c["metadata"].get("creationTimestamp") or ""), c["metadata"]["name"]))
    return str(newest["metadata"]["name"])


def _storage(value: Any) -> Decimal | None:
    try:
        return quantity.parse_quantity(value) if isinstance(value, (str, int)) else None
    except (ValueError, InvalidOperation, ArithmeticError):
        return None


def _access_modes(modes: Any, field: str, detail: str = "") -> list[Cause]:
    if not modes:
        return [validation.required(field, detail)]
    if not isinstance(modes, list):
        return [validation.invalid(field, modes, "must be a list")]
    return [validation.not_supported(field, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]


def _volume_mode(spec: Obj, field: str) -> list[Cause]:
    mode = spec.get("volumeMode")
    return [] if mode is None or mode in VOLUME_MODES else [validation.not_supported(field, mode, VOLUME_MODES)]


def _add_finalizer(obj: Obj, finalizer: str) -> None:
    meta = obj.setdefault("metadata", {})
    finalizers = meta.get("finalizers") or []
    if isinstance(finalizers, list) and finalizer not in finalizers:
        meta["finalizers"] = [*finalizers, finalizer]


class PersistentVolumeClaimStrategy(Strategy):
    has_status = True

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Pending"}

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        spec = obj.get("spec")
        if isinstance(spec, dict) and "storageClassName" not in spec:  # "" asks for no class at all
            name = default_class(ctx)
            if name is not None:
                spec["storageClassName"] = name
        _add_finalizer(obj, PVC_PROTECTION)

    def prepare_update(self, new: Obj, old: Obj, ctx: Context) -> None:
        super().prepare_update(new, old, ctx)
        spec, old_spec = new.get("spec"), old.get("spec") or {}
        # The retroactive default: a claim made before any default class existed may be given one.
        if isinstance(spec, dict) and "storageClassName" not in spec and old_spec.get("storageClassName"):
            spec["storageClassName"] = old_spec["storageClassName"]

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [validation.required("spec")]
        causes = _access_modes(spec.get("accessModes"), "spec.accessModes", "at least 1 access mode is required")
        requests = (spec.get("resources") or {}).get("requests") or {}
        if "storage" not in requests:
            causes.append(validation.required("spec.resources[storage]"))
        else:
            amount = _storage(requests["storage"])
            if amount is None:
                causes.append(validation.invalid("spec.resources.requests[storage]", requests["storage"],
                                                 "must be a quantity"))
            elif amount <= 0:
                causes.append(validation.invalid("spec.resources.requests[storage]", str(requests["storage"]),
                                                 "must be greater than zero"))
        klass = spec.get("storageClassName")
        if klass:
            causes += validation.dns1123_subdomain(str(klass), "spec.storageClassName")
        causes += _volume_mode(spec, "spec.volumeMode")
        if spec.get("selector") is not None:
            causes += validation.label_selector(spec["selector"], "spec.selector")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        spec, old_spec = dict(new.get("spec") or {}), dict(old.get("spec") or {})
        if not old_spec.get("volumeName"):  # the binder fills it in once
            old_spec.pop("volumeName", None)
            spec.pop("volumeName", None)
        if old_spec.get("storageClassName") is None:  # a default class given later
            old_spec.pop("storageClassName", None)
            spec.pop("storageClassName", None)
        for s in (spec, old_spec):
            s.pop("volumeAttributesClassName", None)
            s["resources"] = {k: v for k, v in (s.get("resources") or {}).items() if k != "requests"}
        if spec != old_spec:
            return [validation.forbidden("spec", "spec is immutable after creation except resources.requests and "
                                         "volumeAttributesClassName for bound claims")]
        return []


class PersistentVolumeStrategy(Strategy):
    has_status = True

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Pending"}

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        _add_finalizer(obj, PV_PROTECTION)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [validation.required("spec")]
        causes: list[Cause] = []
        capacity = spec.get("capacity") or {}
        if not capacity:
            causes.append(validation.required("spec.capacity"))
        elif "storage" not in capacity:
            causes.append(validation.not_supported("spec.capacity", sorted(capacity)[0], ("storage",)))
        else:
            amount = _storage(capacity["storage"])
            if amount is None or amount <= 0:
                causes.append(validation.invalid("spec.capacity[storage]", str(capacity["storage"]),
                                                 "must be greater than zero"))
        causes += _access_modes(spec.get("accessModes"), "spec.accessModes")
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy not in RECLAIM_POLICIES:
            causes.append(validation.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
        causes += _volume_mode(spec, "spec.volumeMode")
        sources = [s for s in PV_SOURCES if spec.get(s) is not None]
        if not sources:
            causes.append(validation.required("spec", "must specify a volume type"))
        for extra in sources[1:]:
            causes.append(validation.forbidden(f"spec.{extra}", "may not specify more than 1 volume type"))
        for src in ("hostPath", "local"):
            if src in sources:
                path = (spec.get(src) or {}).get("path")
                if not path:
                    causes.append(validation.required(f"spec.{src}.path"))
                elif not str(path).startswith("/"):
                    causes.append(validation.invalid(f"spec.{src}.path", path, "must be an absolute path"))
                elif ".." in str(path).split("/"):
                    causes.append(validation.invalid(f"spec.{src}.path", path, "must not contain '..'"))
        if "local" in sources and not ((spec.get("nodeAffinity") or {}).get("required")):
            causes.append(validation.required("spec.nodeAffinity", "Local volume requires node affinity"))
        klass = spec.get("storageClassName")
        if klass:
            causes += validation.dns1123_subdomain(str(klass), "spec.storageClassName")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        causes: list[Cause] = []
        for src in PV_SOURCES:
            if old_spec.get(src) is not None and spec.get(src) != old_spec.get(src):
                causes.append(validation.forbidden("spec.persistentvolumesource",
                                                   "spec.persistentvolumesource is forbidden once set"))
                break
        if old_spec.get("nodeAffinity") and spec.get("nodeAffinity") != old_spec.get("nodeAffinity"):
            causes.append(validation.invalid("spec.nodeAffinity", "", "field is immutable once set"))
        if spec.get("volumeMode") != old_spec.get("volumeMode"):
            causes.append(validation.invalid("spec.volumeMode", spec.get("volumeMode"), "field is immutable"))
        return causes


class StorageClassStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        provisioner = obj.get("provisioner")
        if not provisioner:
            causes.append(validation.required("provisioner"))
        elif not isinstance(provisioner, str):
            causes.append(validation.invalid("provisioner", provisioner, "must be a string"))
        else:
            causes += [validation.invalid("provisioner", provisioner, m)
                       for m in validation.is_qualified_name(provisioner)]
        if obj.get("reclaimPolicy") not in ("Delete", "Retain"):
            causes.append(validation.not_supported("reclaimPolicy", obj.get("reclaimPolicy"), ("Delete", "Retain")))
        if obj.get("volumeBindingMode") not in BINDING_MODES:
            causes.append(validation.not_supported("volumeBindingMode", obj.get("volumeBindingMode"), BINDING_MODES))
        params = obj.get("parameters")
        if params is not None and (not isinstance(params, dict) or
                                   any(not isinstance(v, str) for v in params.values())):
            causes.append(validation.invalid("parameters", params, "must be a map of strings"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for field in ("parameters", "provisioner", "reclaimPolicy"):
            if (new.get(field) or None) != (old.get(field) or None):
                causes.append(validation.forbidden(field, f"updates to {field} are forbidden."))
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            causes.append(validation.invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
        return causes


# --- tables ---------------------------------------------------------------------------------------------------
def _modes(modes: Any) -> str:
    return ",".join(_SHORT_MODES.get(str(m), str(m)) for m in modes or [])


def _claim_ref(pv: Obj, _now: dt.datetime) -> str:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""


def _class_name(sc: Obj, _now: dt.datetime) -> str:
    name = str((sc.get("metadata") or {}).get("name", ""))
    return f"{name} (default)" if is_default_class(sc) else name


PV_TABLE = TableDef((
    NAME,
    Column("Capacity", lambda o, n: ((o.get("spec") or {}).get("capacity") or {}).get("storage", ""),
           description="The volume's capacity."),
    Column("Access Modes", lambda o, n: _modes((o.get("spec") or {}).get("accessModes")),
           description="How the volume may be mounted."),
    Column("Reclaim Policy", lambda o, n: (o.get("spec") or {}).get("persistentVolumeReclaimPolicy", ""),
           description="What happens to the volume when its claim is released."),
    Column("Status", lambda o, n: (o.get("status") or {}).get("phase", ""), description="The volume's phase."),
    Column("Claim", _claim_ref, description="The claim bound to the volume."),
    Column("StorageClass", lambda o, n: (o.get("spec") or {}).get("storageClassName", ""),
           description="The volume's storage class."),
    Column("VolumeAttributesClass", lambda o, n: (o.get("spec") or {}).get("volumeAttributesClassName") or "<unset>",
           description="The volume's attributes class."),
    Column("Reason", lambda o, n: (o.get("status") or {}).get("reason", ""), description="Why the phase."),
    AGE,
    Column("VolumeMode", lambda o, n: (o.get("spec") or {}).get("volumeMode", ""), priority=1,
           description="Filesystem or Block."),
))

PVC_TABLE = TableDef((
    NAME,
    Column("Status", lambda o, n: (o.get("status") or {}).get("phase", ""), description="The claim's phase."),
    Column("Volume", lambda o, n: (o.get("spec") or {}).get("volumeName", ""), description="The bound volume."),
    Column("Capacity", lambda o, n: ((o.get("status") or {}).get("capacity") or {}).get("storage", ""),
           description="The bound volume's capacity."),
    Column("Access Modes", lambda o, n: _modes((o.get("status") or {}).get("accessModes")),
           description="How the bound volume may be mounted."),
    Column("StorageClass", lambda o, n: (o.get("spec") or {}).get("storageClassName") or "<unset>",
           description="The claim's storage class."),
    Column("VolumeAttributesClass", lambda o, n: (o.get("spec") or {}).get("volumeAttributesClassName") or "<unset>",
           description="The claim's attributes class."),
    AGE,
    Column("VolumeMode", lambda o, n: (o.get("spec") or {}).get("volumeMode", ""), priority=1,
           description="Filesystem or Block."),
))

STORAGECLASS_TABLE = TableDef((
    Column("Name", _class_name, format="name", description="The class's name."),
    Column("Provisioner", lambda o, n: o.get("provisioner", ""), description="Who makes the volumes."),
    Column("ReclaimPolicy", lambda o, n: o.get("reclaimPolicy", ""), description="What a released volume becomes."),
    Column("VolumeBindingMode", lambda o, n: o.get("volumeBindingMode", ""), description="When claims are bound."),
    Column("AllowVolumeExpansion", lambda o, n: "true" if o.get("allowVolumeExpansion") else "false",
           type="boolean", description="Whether claims may grow."),
    AGE,
))
