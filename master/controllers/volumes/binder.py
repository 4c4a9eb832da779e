"""The persistent volume controller: claims meet volumes, phases follow, protection holds, released volumes go.

Keys are `claim:<ns>/<name>` and `volume:<name>`; one sync decides one object.

A **claim** that names a volume is Bound once the volume's `claimRef` names it
back (its status then carries the volume's capacity and access modes), Lost
when the volume is gone or taken. A claim without a volume:
- of no class (`""`) or of an `Immediate` class binds to the smallest fitting
  Available volume (core/kube/volumebinding.py): the volume's
  `claimRef` first, then the claim's `volumeName`, so a crash in between
  leaves a reservation the next sync completes, never two claims on one volume;
- of a `WaitForFirstConsumer` class waits for a pod: the scheduler picks the
  board and makes the volume there (master/scheduler/volumes.py) — an event
  says so once;
- of a class that does not exist stays Pending with Kubernetes' event
  (`storageclass.storage.k8s.io "x" not found`).

A **volume** is Available without a claimRef, Bound while its claim exists
(same uid), Released once the claim is gone. Released ones are reclaimed by
policy: `Retain` keeps volume and data; `Delete` removes a local-path volume's
directory through its board's agent and then the PersistentVolume (a board
that is down is retried with back-off); any other volume cannot be deleted here
and turns Failed, as Kubernetes words it.

**Protection**: a claim being deleted keeps `kubernetes.io/pvc-protection`
while a pod that is not finished uses it; a volume keeps
`kubernetes.io/pv-protection` while it is Bound.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

from core import errors, wellknown
from core.kube.volumebinding import best_volume, claim_names, claim_ref_key, local_path_node, unclaimed_class
from master.api import agentlink
from master.client import Env, Informer
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.keys import by_namespace
from master.registry import storage

log = logging.getLogger(__name__)
Obj = dict[str, Any]
COMPONENT = "persistentvolume-controller"
LOCAL_PATH_ROUTE = "/pikube/local-path/"


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        k = env.kinds
        self.claims: Informer = env.informers.informer(k.persistentvolumeclaims)
        self.volumes: Informer = env.informers.informer(k.persistentvolumes)
        self.classes: Informer = env.informers.informer(k.storageclasses)
        self.pods: Informer = env.informers.informer(k.pods)
        self.pods.add_indexer("namespace", by_namespace)
        self.volumes.add_indexer("unclaimed", unclaimed_class)
        self.volumes.add_indexer("claim", claim_ref_key)
        self._said: dict[str, str] = {}  # claim key -> the last waiting event given, so it is said once
        self.claims.add_handler(self._claim_changed)
        self.volumes.add_handler(self._volume_changed)
        self.classes.add_handler(lambda old, new: self._all_pending_claims())
        self.pods.add_handler(self._pod_changed)

    def resync_keys(self) -> list[str]:
        claims, volumes = self.claims.keys(), self.volumes.keys()
        return [f"claim:{k}" for k in claims] + [f"volume:{k}" for k in volumes]

    # --- events -------------------------------------------------------------------------------------------
    def _claim_changed(self, old: Obj | None, new: Obj | None) -> None:
        claim = new or old
        assert claim is not None
        m = claim["metadata"]
        self.queue.add(f"claim:{m.get('namespace')}/{m['name']}")
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            self.queue.add(f"volume:{volume}")
        if new is None:  # volumes whose claimRef named it are released now
            for pv in self.volumes.by_index("claim", f"{m.get('namespace')}/{m['name']}"):
                self.queue.add(f"volume:{pv['metadata']['name']}")

    def _volume_changed(self, old: Obj | None, new: Obj | None) -> None:
        pv = new or old
        assert pv is not None
        self.queue.add(f"volume:{pv['metadata']['name']}")
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("name"):
            self.queue.add(f"claim:{ref.get('namespace')}/{ref['name']}")
        if new is not None and old is None and not ref:
            self._all_pending_claims()  # a new volume may be what a waiting claim needs

    def _all_pending_claims(self) -> None:
        for claim in self.claims.list():
            if not (claim.get("spec") or {}).get("volumeName"):
                m = claim["metadata"]
                self.queue.add(f"claim:{m.get('namespace')}/{m['name']}")

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        if new is None or podutil.is_terminal(new):  # a claim in deletion may be free now
            ns = podutil.meta(pod).get("namespace", "")
            for name in claim_names(pod):
                self.queue.add(f"claim:{ns}/{name}")

    # --- syncs --------------------------------------------------------------------------------------------
    def sync(self, key: str) -> None:
        what, _, rest = key.partition(":")
        if what == "claim":
            ns, _, name = rest.partition("/")
            self._sync_claim(ns, name)
        elif what == "volume":
            self._sync_volume(rest)

    def _in_use(self, ns: str, name: str) -> bool:
        return any(name in claim_names(p) and not podutil.is_terminal(p) for p in self.pods.by_index("namespace", ns))

    def _sync_claim(self, ns: str, name: str) -> None:
        claim = self.claims.get(ns, name)
        key = f"{ns}/{name}"
        if claim is None:
            self._said.pop(key, None)
            return
        meta, spec = claim["metadata"], claim.get("spec") or {}
        if meta.get("deletionTimestamp"):
            if storage.PVC_PROTECTION in (meta.get("finalizers") or []) and not self._in_use(ns, name):
                self._drop_finalizer(self.kinds.persistentvolumeclaims, claim, storage.PVC_PROTECTION)
            return
        volume_name = spec.get("volumeName")
        if volume_name:
            self._claim_with_volume(claim, str(volume_name))
            return
        class_name = spec.get("storageClassName") or ""
        klass = self.classes.get("", class_name) if class_name else None
        if class_name and klass is None:
            self._say(claim, "Warning", "ProvisioningFailed",
                      f'storageclass.storage.k8s.io "{class_name}" not found')
            return
        if klass is not None and klass.get("volumeBindingMode") == "WaitForFirstConsumer":
            self._say(claim, "Normal", "WaitForFirstConsumer",
                      "waiting for first consumer to be created before binding")
            return
        reserved = [pv for pv in self.volumes.by_index("claim", f"{ns}/{name}")
                    if not ((pv.get("spec") or {}).get("claimRef") or {}).get("uid")]
        pv = best_volume(reserved + self.volumes.by_index("unclaimed", class_name), claim)
        if pv is not None:
            self._bind(claim, pv)
            return
        if klass is not None and klass.get("provisioner") == wellknown.LOCAL_PATH_PROVISIONER:
            self._say(claim, "Warning", "ProvisioningFailed",
                      f'storageclass "{class_name}": local-path volumes are made on the board of the first pod '
                      "that uses the claim; the class needs volumeBindingMode WaitForFirstConsumer")
        elif klass is not None:
            self._say(claim, "Normal", "ExternalProvisioning",
                      f'Waiting for a volume to be created either by the external provisioner '
                      f'"{klass.get("provisioner")}" or manually by the system administrator.')
        else:
            self._say(claim, "Normal", "FailedBinding",
                      "no persistent volumes available for this claim and no storage class is set")

    def _say(self, claim: Obj, type_: str, reason: str, message: str) -> None:
        key = f"{claim['metadata'].get('namespace')}/{claim['metadata']['name']}"
        if self._said.get(key) != reason:
            self._said[key] = reason
            self.env.recorder.event(claim, type_, reason, message, COMPONENT)

    def _bind(self, claim: Obj, pv: Obj) -> None:
        """Reserve the volume for the claim (its claimRef), then name the volume in the claim."""
        m = claim["metadata"]
        ref = {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace"), "name": m["name"],
               "uid": m.get("uid"), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion")}
        if (pv.get("spec") or {}).get("claimRef", {}).get("uid") != m.get("uid"):
            new = copy.deepcopy(pv)
            new["spec"]["claimRef"] = ref
            self.client.update(self.kinds.persistentvolumes, new)
        bound = copy.deepcopy(claim)
        bound["spec"]["volumeName"] = pv["metadata"]["name"]
        annotations = bound["metadata"].setdefault("annotations", {})
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        self.client.update(self.kinds.persistentvolumeclaims, bound)

    def _claim_with_volume(self, claim: Obj, volume_name: str) -> None:
        pv = self.volumes.get("", volume_name)
        ref = ((pv or {}).get("spec") or {}).get("claimRef") or {}
        m = claim["metadata"]
        if pv is not None and not ref:  # named ahead of time by the claim: reserve the volume for it
            self._bind(claim, pv)
            return
        if pv is None or ref.get("uid") not in (None, "", m.get("uid")) or ref.get("name") != m["name"]:
            if (claim.get("status") or {}).get("phase") != "Lost":
                self._say(claim, "Warning", "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the "
                                                         "volume is lost!")
                self._set_status(self.kinds.persistentvolumeclaims, claim, {"phase": "Lost"})
            return
        spec = pv.get("spec") or {}
        status = {"phase": "Bound", "accessModes": list(spec.get("accessModes") or []),
                  "capacity": dict(spec.get("capacity") or {})}
        self._set_status(self.kinds.persistentvolumeclaims, claim, status)

    def _set_status(self, rt: Any, obj: Obj, status: Obj) -> None:
        if {k: v for k, v in (obj.get("status") or {}).items() if k in status} == status and \
                set(obj.get("status") or {}) <= set(status):
            return
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.client.update_status(rt, {**obj, "status": status})

    def _drop_finalizer(self, rt: Any, obj: Obj, finalizer: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        with contextlib.suppress(errors.NotFound):
            self.client.update(rt, new)

    def _sync_volume(self, name: str) -> None:
        pv = self.volumes.get("", name)
        if pv is None:
            return
        meta, spec = pv["metadata"], pv.get("spec") or {}
        ref = spec.get("claimRef") or {}
        claim = self.claims.get(str(ref.get("namespace") or ""), str(ref.get("name") or "")) if ref else None
        if claim is not None and ref.get("uid") and claim["metadata"].get("uid") != ref.get("uid"):
            claim = None  # a new claim of the same name is not this volume's claim
        if meta.get("deletionTimestamp"):
            if storage.PV_PROTECTION in (meta.get("finalizers") or []) and claim is None:
                self._drop_finalizer(self.kinds.persistentvolumes, pv, storage.PV_PROTECTION)
            return
        if not ref:
            self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Available"})
            return
        if claim is not None:
            if (claim.get("spec") or {}).get("volumeName") == name:
                self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Bound"})
            else:
                self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Available"})
                self.queue.add(f"claim:{ref.get('namespace')}/{ref.get('name')}")
            return
        if not ref.get("uid") and (pv.get("status") or {}).get("phase") in (None, "Pending", "Available"):
            self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Available"})  # waiting for its claim
            return
        if (pv.get("status") or {}).get("phase") != "Released" and (pv.get("status") or {}).get("phase") != "Failed":
            self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Released"})
            return
        if (pv.get("status") or {}).get("phase") == "Released":
            self._reclaim(pv)

    def _reclaim(self, pv: Obj) -> None:
        spec, meta = pv.get("spec") or {}, pv["metadata"]
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy == "Retain":
            return
        provisioned = (meta.get("annotations") or {}).get(wellknown.PROVISIONED_BY_ANNOTATION)
        if policy != "Delete" or provisioned != wellknown.LOCAL_PATH_PROVISIONER:
            plugin, able, reason = ("deleter", "deletable", "VolumeFailedDelete") if policy == "Delete" else \
                ("recycler", "recyclable", "VolumeFailedRecycle")
            message = f'error getting {plugin} volume plugin for volume "{meta["name"]}": no {able} volume plugin ' \
                      "matched"
            self.env.recorder.event(pv, "Warning", reason, message, COMPONENT)
            self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Failed", "message": message})
            return
        self._delete_local_path(pv)

    def _delete_local_path(self, pv: Obj) -> None:
        """Remove the volume's directory on its board, then the PersistentVolume (retried until the board answers)."""
        name = pv["metadata"]["name"]
        node = local_path_node(pv)
        path = str(((pv.get("spec") or {}).get("hostPath") or {}).get("path") or "")
        directory = path.rstrip("/").rpartition("/")[2]
        if node is None or not directory:
            message = f'volume "{name}" does not say which board and directory hold it'
            self._set_status(self.kinds.persistentvolumes, pv, {"phase": "Failed", "message": message})
            return
        ctx = self.client.handlers.ctx
        try:
            code, text = agentlink.call(ctx, node, "DELETE", LOCAL_PATH_ROUTE + directory)
        except errors.ApiError as exc:
            self.env.recorder.event(pv, "Warning", "VolumeFailedDelete", exc.message, COMPONENT)
            raise
        if code not in (200, 204, 404):
            message = f'the agent of node "{node}" could not remove {path}: {text or code}'
            self.env.recorder.event(pv, "Warning", "VolumeFailedDelete", message, COMPONENT)
            raise errors.ServiceUnavailable(message=message)
        log.info("removed local-path volume %s (%s on %s)", name, path, node)
        with contextlib.suppress(errors.NotFound):
            self.client.delete(self.kinds.persistentvolumes, "", name, uid=str(pv["metadata"].get("uid") or ""))

