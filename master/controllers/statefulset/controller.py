"""The StatefulSet controller: pods with stable names and their own claims, made, replaced and updated in order.

For a set `web` of N replicas the pods are `web-0` … `web-(N-1)` (from
`spec.ordinals.start` when set), each labelled with its name, index and
revision, with `hostname` = its name and `subdomain` = `serviceName` so the
headless service gives each a DNS name. Before a pod is made, each of the
set's `volumeClaimTemplates` becomes a claim `<template>-web-<i>` (kept when
the pod goes; owned by the set when `whenDeleted: Delete`, by the pod being
scaled away when `whenScaled: Delete`), mounted as the template's volume.

`OrderedReady` (the default) makes pods one at a time in ordinal order, each
only once all before it are Running and Ready, and removes surplus ones from
the highest ordinal down, one at a time; `Parallel` makes and removes them all
at once. A failed pod is deleted and made again under the same name.

Updates: the set's template is a ControllerRevision (revisions.py).
`RollingUpdate` replaces pods whose revision is not the newest, from the highest
ordinal down to `partition`, one at a time, each once the others are Ready;
pods below the partition stay at (and are re-made at) the current revision.
`OnDelete` changes nothing until a pod is deleted. Status follows Kubernetes:
`currentRevision` moves to `updateRevision` once every pod runs it.
"""

from __future__ import annotations

import contextlib
import copy
import re
from typing import Any

from core import errors
from core.kube import timefmt
from master.client import Env, Informer, obj_key, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim
from master.controllers.statefulset import revisions
from master.registry.resource import ResourceType

Obj = dict[str, Any]
COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def _kind(env: Env, group: str, kind: str) -> ResourceType:
    rt = env.client.catalog.by_kind(group, kind)
    if rt is None:
        raise LookupError(f"the catalog serves no {kind}")
    return rt


class StatefulSetController(Controller):
    name = "statefulset"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.set_rt = _kind(env, "apps", "StatefulSet")
        self.revision_rt = _kind(env, "apps", "ControllerRevision")
        self.sets: Informer = env.informers.informer(self.set_rt)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.revisions: Informer = env.informers.informer(self.revision_rt)
        self.claims: Informer = env.informers.informer(self.kinds.persistentvolumeclaims)
        for inf in (self.sets, self.pods, self.revisions):
            inf.add_indexer("namespace", by_namespace)
        self.primary = self.sets
        self.sets.add_handler(lambda old, new: self.enqueue(new or old))
        self.pods.add_handler(self._pod_changed)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = owner_key(pod, "StatefulSet")
        if key is not None:
            self.queue.add(key)
        elif new is not None:  # an orphan a set may adopt
            labels = podutil.meta(new).get("labels") or {}
            for sts in self.sets.by_index("namespace", str(podutil.meta(new).get("namespace", ""))):
                selector = (sts.get("spec") or {}).get("selector")
                if selector and podutil.selector(selector).matches(labels):
                    self.enqueue(sts)

    # --- sync ---------------------------------------------------------------------------------------------
    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        sts = self.sets.get(ns, name)
        if sts is None or podutil.meta(sts).get("deletionTimestamp"):
            return
        spec = sts.get("spec") or {}
        selector = podutil.selector(spec.get("selector"))
        owned = claim(self.client, self.kinds.pods, self.set_rt, sts, self.pods.by_index("namespace", ns), selector)
        current, update, history = self._revisions(sts)
        pods = {p["metadata"]["name"]: p for p in owned}
        error: Exception | None = None
        try:
            self._manage(sts, pods, current, update)
        except errors.ApiError as exc:
            error = exc
        self._status(sts, list(pods.values()), current, update)
        self._trim(sts, history, list(pods.values()), current, update)
        if error is not None:
            raise error

    def _revisions(self, sts: Obj) -> tuple[Obj, Obj, list[Obj]]:
        """(current revision, update revision, every revision of the set), making or renumbering the newest."""
        uid = podutil.meta(sts).get("uid")
        ns = str(podutil.meta(sts).get("namespace"))
        history = [r for r in self.revisions.by_index("namespace", ns) if podutil.controller_uid(r) == uid]
        data = revisions.data_of(sts)
        newest = max((int(r.get("revision") or 0) for r in history), default=0)
        update = next((r for r in history if revisions.same_data(r.get("data") or {}, data)), None)
        if update is None:
            made = revisions.new_revision(sts, newest + 1, podutil.owner_ref(sts, "apps/v1", "StatefulSet"))
            try:
                update = self.client.create(self.revision_rt, ns, made)
            except errors.AlreadyExists:
                found = self.client.get(self.revision_rt, ns, made["metadata"]["name"])
                if found is None or podutil.controller_uid(found) != uid:
                    raise
                update = found
            history.append(update)
        elif int(update.get("revision") or 0) < newest:  # back to an older template: it is the newest again
            update = self.client.update(self.revision_rt, {**update, "revision": newest + 1})
            history = [update if r["metadata"]["name"] == update["metadata"]["name"] else r for r in history]
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in history if r["metadata"]["name"] == current_name), update)
        return current, update, history

    def _ordinals(self, sts: Obj) -> range:
        spec = sts.get("spec") or {}
        start = int(((spec.get("ordinals") or {}).get("start")) or 0)
        return range(start, start + int(spec.get("replicas") or 0))

    def _manage(self, sts: Obj, pods: dict[str, Obj], current: Obj, update: Obj) -> None:
        spec, name = sts.get("spec") or {}, podutil.meta(sts)["name"]
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0) \
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" else 0
        wanted = self._ordinals(sts)
        # Make missing pods (and replace failed ones), in order.
        for ordinal in wanted:
            pod_name = f"{name}-{ordinal}"
            pod = pods.get(pod_name)
            if pod is not None and podutil.is_terminal(pod) and not podutil.meta(pod).get("deletionTimestamp"):
                self._delete_pod(sts, pod)
                if ordered:
                    return
                continue
            if pod is None:
                use = current if strategy.get("type", "RollingUpdate") == "RollingUpdate" and ordinal < partition \
                    else update
                self._create(sts, ordinal, use)
                if ordered:
                    return
                continue
            if ordered and not (podutil.is_ready(pod) and not podutil.meta(pod).get("deletionTimestamp")):
                return  # wait for this one before the next
        # Remove pods beyond the wanted ordinals, highest first.
        surplus = sorted((p for n, p in pods.items() if _ordinal(name, n) not in wanted),
                         key=lambda p: -(_ordinal(name, p["metadata"]["name"]) or 0))
        if surplus:
            if ordered and any(podutil.meta(p).get("deletionTimestamp") for p in surplus):
                return
            for pod in surplus[:1] if ordered else surplus:
                if not podutil.meta(pod).get("deletionTimestamp"):
                    self._scale_away(sts, pod)
            return
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        # Rolling update: one pod at a time from the top, once everything is ready.
        live = [pods.get(f"{name}-{o}") for o in wanted]
        if any(p is None or not podutil.is_ready(p) or podutil.meta(p).get("deletionTimestamp") for p in live):
            return
        for ordinal in reversed(wanted):
            if ordinal < partition:
                break
            pod = pods[f"{name}-{ordinal}"]
            if (podutil.meta(pod).get("labels") or {}).get(REVISION_LABEL) != update["metadata"]["name"]:
                self._delete_pod(sts, pod)
                return

    def _create(self, sts: Obj, ordinal: int, revision: Obj) -> None:
        meta, spec = podutil.meta(sts), sts.get("spec") or {}
        ns, name = str(meta.get("namespace")), str(meta["name"])
        pod_name = f"{name}-{ordinal}"
        template = revisions.template_of(revision)
        pod = podutil.pod_from_template(template, sts, "apps/v1", "StatefulSet", "", {
            POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision["metadata"]["name"]})
        pod["metadata"].pop("generateName", None)
        pod["metadata"]["name"] = pod_name
        pod_spec = pod["spec"]
        pod_spec["hostname"] = pod_name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        volumes = [v for v in pod_spec.get("volumes") or []]
        for template_claim in spec.get("volumeClaimTemplates") or []:
            tname = str((template_claim.get("metadata") or {}).get("name"))
            claim_name = f"{tname}-{name}-{ordinal}"
            self._ensure_claim(sts, template_claim, claim_name, pod_name)
            volumes = [v for v in volumes if v.get("name") != tname]
            volumes.append({"name": tname, "persistentVolumeClaim": {"claimName": claim_name}})
        if volumes:
            pod_spec["volumes"] = volumes
        try:
            self.client.create(self.kinds.pods, ns, pod)
        except errors.AlreadyExists:
            return  # made by an earlier sync the cache has not shown yet
        except errors.ApiError as exc:
            self.env.recorder.event(sts, "Warning", "FailedCreate",
                                    f"create Pod {pod_name} in StatefulSet {name} failed error: {exc}", COMPONENT)
            raise
        self.env.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Pod {pod_name} in StatefulSet {name} successful", COMPONENT)

    def _ensure_claim(self, sts: Obj, template: Obj, claim_name: str, pod_name: str) -> None:
        meta = podutil.meta(sts)
        ns = str(meta.get("namespace"))
        if self.claims.get(ns, claim_name) is not None or \
                self.client.get(self.kinds.persistentvolumeclaims, ns, claim_name) is not None:
            return
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}),
                  **(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})}
        body: Obj = {"metadata": {"name": claim_name, "labels": labels}, "spec": copy.deepcopy(template.get("spec")
                                                                                               or {})}
        if tmeta.get("annotations"):
            body["metadata"]["annotations"] = dict(tmeta["annotations"])
        retention = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        if retention.get("whenDeleted") == "Delete":
            body["metadata"]["ownerReferences"] = [{**podutil.owner_ref(sts, "apps/v1", "StatefulSet"),
                                                    "controller": False}]
        try:
            self.client.create(self.kinds.persistentvolumeclaims, ns, body)
        except errors.AlreadyExists:
            return
        except errors.ApiError as exc:
            self.env.recorder.event(sts, "Warning", "FailedCreate", f"create Claim {claim_name} for Pod {pod_name} "
                                    f"in StatefulSet {meta['name']} failed error: {exc}", COMPONENT)
            raise
        self.env.recorder.event(sts, "Normal", "SuccessfulCreate", f"create Claim {claim_name} Pod {pod_name} "
                                f"in StatefulSet {meta['name']} success", COMPONENT)

    def _scale_away(self, sts: Obj, pod: Obj) -> None:
        retention = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        if retention.get("whenScaled") == "Delete":  # the claim goes with the pod (garbage collection)
            ns = str(podutil.meta(pod).get("namespace"))
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                ref = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                found = self.client.get(self.kinds.persistentvolumeclaims, ns, str(ref)) if ref else None
                if found is not None:
                    owners = [o for o in podutil.meta(found).get("ownerReferences") or []
                              if o.get("uid") != podutil.meta(pod).get("uid")]
                    owners.append({**podutil.owner_ref(pod, "v1", "Pod"), "controller": False})
                    found["metadata"]["ownerReferences"] = owners
                    with contextlib.suppress(errors.Conflict, errors.NotFound):
                        self.client.update(self.kinds.persistentvolumeclaims, found)
        self._delete_pod(sts, pod)

    def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        m = podutil.meta(pod)
        if self.client.delete(self.kinds.pods, str(m.get("namespace")), str(m["name"]), uid=str(m.get("uid"))) \
                is None:
            return
        self.env.recorder.event(sts, "Normal", "SuccessfulDelete",
                                f"delete Pod {m['name']} in StatefulSet {podutil.meta(sts)['name']} successful",
                                COMPONENT)

    # --- status and history -------------------------------------------------------------------------------
    def _status(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj) -> None:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        at = timefmt.now()
        active = [p for p in pods if podutil.is_active(p)]
        revision = {p["metadata"]["name"]: (podutil.meta(p).get("labels") or {}).get(REVISION_LABEL) for p in active}
        updated = sum(1 for r in revision.values() if r == update["metadata"]["name"])
        current_name = current["metadata"]["name"]
        replicas = int(spec.get("replicas") or 0)
        if updated == replicas and len(active) == replicas and all(podutil.is_ready(p) for p in active):
            current_name = update["metadata"]["name"]
        status: Obj = {
            "observedGeneration": podutil.meta(sts).get("generation", 1),
            "replicas": len(active),
            "readyReplicas": sum(1 for p in active if podutil.is_ready(p)),
            "availableReplicas": sum(1 for p in active if podutil.is_available(p, min_ready, at)),
            "currentReplicas": sum(1 for r in revision.values() if r == current_name),
            "updatedReplicas": updated,
            "currentRevision": current_name,
            "updateRevision": update["metadata"]["name"],
            "collisionCount": 0,
        }
        if min_ready and status["readyReplicas"] != status["availableReplicas"]:
            self.queue.add_after(obj_key(sts), float(min_ready))
        status = {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount")}
        if (sts.get("status") or {}) == status:
            return
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.client.update_status(self.set_rt, {**sts, "status": status})

    def _trim(self, sts: Obj, history: list[Obj], pods: list[Obj], current: Obj, update: Obj) -> None:
        keep = {current["metadata"]["name"], update["metadata"]["name"]}
        keep |= {str((podutil.meta(p).get("labels") or {}).get(REVISION_LABEL)) for p in pods}
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10))
        for old in revisions.surplus(history, keep, limit):
            m = podutil.meta(old)
            self.client.delete(self.revision_rt, str(m.get("namespace")), str(m["name"]), uid=str(m.get("uid")))


def _ordinal(set_name: str, pod_name: str) -> int | None:
    match = re.fullmatch(re.escape(set_name) + r"-(\d+)", pod_name)
    return int(match.group(1)) if match else None
