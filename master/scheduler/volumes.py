"""The scheduler's part in persistent volumes: where a pod's claims let it run, and binding them once it is placed.

Before placing a pod (`check`): a claim that does not exist or is being deleted
keeps the pod Pending with kube-scheduler's words; a bound claim pins the pod to
the nodes its volume's node affinity allows ("volume node affinity conflict");
an unbound claim of an `Immediate` class (or of no class, or of a class that
does not exist) must be bound first ("pod has unbound immediate
PersistentVolumeClaims"); an unbound claim of a `WaitForFirstConsumer` class
lets the pod go to any node where a fitting volume exists or — for the
`pikube.io/local-path` provisioner — any node whose agent published its
local-path directory.

After placing it (`assume`, then `bind_claims` on a binder thread, before the
pod's own binding): each such claim is bound on the chosen node, to a fitting
existing volume there, or to a new local-path volume, a directory under the
board's published directory, pinned to the board by node affinity — the
volume's `claimRef` first, then the claim's `volumeName`, so the volume
controller finds either a finished binding or a reservation to complete.
Claims assumed for a node but not bound yet pin every other pod that uses them
to that node, so two replicas sharing a claim never pick two boards.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import errors, wellknown
from core.kube import volumebinding as vb
from master.client import Env, Informer
from master.scheduler.cache import NodeInfo

Obj = dict[str, Any]
AFFINITY_CONFLICT = "node(s) had volume node affinity conflict"
NO_VOLUMES = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
COMPONENT = "default-scheduler"


@dataclass
class VolumeCheck:
    """A pod's claims as the scheduler sees them: an error for every node, or what each node must offer."""

    error: str | None = None
    bound: list[Obj] = field(default_factory=list)  # volumes of bound claims: their node affinity must hold
    pinned: dict[str, str] = field(default_factory=dict)  # claim -> node it is being bound on
    delayed: list[tuple[Obj, Obj]] = field(default_factory=list)  # (claim, class) bound once the pod is placed
    free: dict[str, list[Obj]] = field(default_factory=dict)  # class -> volumes free to bind, for delayed claims

    @property
    def empty(self) -> bool:
        return not (self.bound or self.pinned or self.delayed)

    def reason(self, info: NodeInfo) -> str | None:
        """Why the pod's claims cannot be used on this node, or None."""
        node = info.node
        for pv in self.bound:
            if not vb.on_node(pv, node):
                return AFFINITY_CONFLICT
        for where in self.pinned.values():
            if where != info.name:
                return AFFINITY_CONFLICT
        for claim, klass in self.delayed:
            if klass.get("provisioner") == wellknown.LOCAL_PATH_PROVISIONER:
                annotations = (node.get("metadata") or {}).get("annotations") or {}
                if annotations.get(wellknown.LOCAL_PATH_DIR_ANNOTATION):
                    continue
            free = self.free.get(str((claim.get("spec") or {}).get("storageClassName") or ""), [])
            if not any(vb.fits(pv, claim) and vb.on_node(pv, node) for pv in free):
                return NO_VOLUMES
        return None


class VolumeBinder:
    def __init__(self, env: Env, changed: Callable[[], None]) -> None:
        self.env, self.client, k = env, env.client, env.kinds
        self.claims: Informer = env.informers.informer(k.persistentvolumeclaims)
        self.volumes: Informer = env.informers.informer(k.persistentvolumes)
        self.classes: Informer = env.informers.informer(k.storageclasses)
        self._lock = threading.Lock()
        self._assumed: dict[str, str] = {}  # "ns/claim" -> node
        self.volumes.add_indexer("unclaimed", vb.unclaimed_class)
        for inf in (self.claims, self.volumes, self.classes):
            inf.add_handler(lambda old, new: changed())

    def check(self, pod: Obj) -> VolumeCheck:
        out = VolumeCheck()
        names = vb.claim_names(pod)
        if not names:
            return out
        ns = str((pod.get("metadata") or {}).get("namespace") or "")
        for name in names:
            claim = self.claims.get(ns, name)
            if claim is None:
                return VolumeCheck(error=f'persistentvolumeclaim "{name}" not found')
            if claim["metadata"].get("deletionTimestamp"):
                return VolumeCheck(error=f'persistentvolumeclaim "{name}" is being deleted')
            spec = claim.get("spec") or {}
            volume_name = spec.get("volumeName")
            if volume_name:
                pv = self.volumes.get("", str(volume_name))
                if pv is None:
                    return VolumeCheck(error=f'persistentvolume "{volume_name}" not found')
                out.bound.append(pv)
                continue
            with self._lock:
                assumed = self._assumed.get(f"{ns}/{name}")
            if assumed is not None:
                out.pinned[name] = assumed
                continue
            klass = self.classes.get("", str(spec.get("storageClassName") or "")) if spec.get("storageClassName") \
                else None
            if klass is None or klass.get("volumeBindingMode") != "WaitForFirstConsumer":
                return VolumeCheck(error=UNBOUND_IMMEDIATE)
            out.delayed.append((claim, klass))
            class_name = str(klass["metadata"]["name"])
            if class_name not in out.free:
                out.free[class_name] = self.volumes.by_index("unclaimed", class_name)
        return out

    def assume(self, pod: Obj, check: VolumeCheck, node: str) -> None:
        """Pin the pod's delayed claims to `node` until they are bound (call right after placing it)."""
        ns = str((pod.get("metadata") or {}).get("namespace") or "")
        with self._lock:
            for claim, _ in check.delayed:
                self._assumed[f"{ns}/{claim['metadata']['name']}"] = node

    def forget(self, pod: Obj, check: VolumeCheck) -> None:
        ns = str((pod.get("metadata") or {}).get("namespace") or "")
        with self._lock:
            for claim, _ in check.delayed:
                self._assumed.pop(f"{ns}/{claim['metadata']['name']}", None)

    def bind_claims(self, pod: Obj, check: VolumeCheck, node_name: str, node: Obj) -> None:
        """Bind every delayed claim of the pod on `node_name` (from a binder thread). Raises on failure, after
        which the pod is placed again; a Conflict means another binding won, which the next attempt sees."""
        try:
            for claim, klass in check.delayed:
                self._bind_one(claim, klass, node_name, node)
        finally:
            self.forget(pod, check)

    def _bind_one(self, cached: Obj, klass: Obj, node_name: str, node: Obj) -> None:
        m = cached["metadata"]
        claim = self.client.get(self.env.kinds.persistentvolumeclaims, str(m.get("namespace")), str(m["name"]))
        if claim is None or claim["metadata"].get("uid") != m.get("uid"):
            raise errors.Conflict(message=f'persistentvolumeclaim "{m["name"]}" changed while the pod was placed')
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:  # bound meanwhile (another pod of the claim): it must be usable here
            pv = self.client.get(self.env.kinds.persistentvolumes, "", str(volume_name))
            if pv is None or not vb.on_node(pv, node):
                raise errors.Conflict(message=f'persistentvolumeclaim "{m["name"]}" was bound elsewhere')
            return
        free = self.volumes.by_index("unclaimed", str(klass["metadata"]["name"]))
        static = [pv for pv in free if vb.fits(pv, claim) and vb.on_node(pv, node)]
        pv = vb.best_volume(static, claim)
        if pv is None:
            if klass.get("provisioner") != wellknown.LOCAL_PATH_PROVISIONER:
                raise errors.Conflict(message=f'no volume fits persistentvolumeclaim "{m["name"]}" on {node_name}')
            pv = self._provision(claim, klass, node_name, node)
        elif ((pv.get("spec") or {}).get("claimRef") or {}).get("uid") != claim["metadata"].get("uid"):
            reserved = {**pv, "spec": {**pv["spec"], "claimRef": _claim_ref(claim)}}
            pv = self.client.update(self.env.kinds.persistentvolumes, reserved)
        bound = {**claim, "spec": {**claim["spec"], "volumeName": pv["metadata"]["name"]}}
        annotations = dict(claim["metadata"].get("annotations") or {})
        annotations[wellknown.SELECTED_NODE_ANNOTATION] = node_name
        annotations["pv.kubernetes.io/bind-completed"] = "yes"
        if (pv.get("metadata") or {}).get("annotations", {}).get(wellknown.PROVISIONED_BY_ANNOTATION):
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            annotations["volume.kubernetes.io/storage-provisioner"] = str(klass.get("provisioner"))
        bound["metadata"] = {**claim["metadata"], "annotations": annotations}
        self.client.update(self.env.kinds.persistentvolumeclaims, bound)

    def _provision(self, claim: Obj, klass: Obj, node_name: str, node: Obj) -> Obj:
        """A new local-path volume for the claim on the board: `<dir>/pvc-<uid>_<namespace>_<claim>`."""
        m, spec = claim["metadata"], claim.get("spec") or {}
        base = ((node.get("metadata") or {}).get("annotations") or {}).get(wellknown.LOCAL_PATH_DIR_ANNOTATION)
        if not base:
            raise errors.ServiceUnavailable(message=f'node "{node_name}" has not published its local-path directory')
        name = f"pvc-{m['uid']}"
        pv = {"metadata": {"name": name, "annotations": {
                  wellknown.PROVISIONED_BY_ANNOTATION: wellknown.LOCAL_PATH_PROVISIONER,
                  "local.path.provisioner/selected-node": node_name}},
              "spec": {"capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage")},
                       "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
                       "persistentVolumeReclaimPolicy": klass.get("reclaimPolicy") or "Delete",
                       "storageClassName": klass["metadata"]["name"],
                       "volumeMode": spec.get("volumeMode") or "Filesystem",
                       "claimRef": _claim_ref(claim),
                       "hostPath": {"path": f"{str(base).rstrip('/')}/{name}_{m.get('namespace')}_{m['name']}",
                                    "type": "DirectoryOrCreate"},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": vb.HOSTNAME_LABEL, "operator": "In", "values": [node_name]}]}]}}}}
        try:
            made = self.client.create(self.env.kinds.persistentvolumes, "", pv)
        except errors.AlreadyExists:
            found = self.client.get(self.env.kinds.persistentvolumes, "", name)
            if found is None or vb.local_path_node(found) != node_name:
                raise errors.Conflict(message=f'persistentvolume "{name}" exists on another board') from None
            return found
        with contextlib.suppress(Exception):
            self.env.recorder.event(claim, "Normal", "ProvisioningSucceeded",
                                    f'Successfully provisioned volume {name} on node "{node_name}"',
                                    wellknown.LOCAL_PATH_PROVISIONER)
        return made


def _claim_ref(claim: Obj) -> Obj:
    m = claim["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": m.get("namespace"), "name": m["name"],
            "uid": m.get("uid"), "apiVersion": "v1", "resourceVersion": m.get("resourceVersion")}
