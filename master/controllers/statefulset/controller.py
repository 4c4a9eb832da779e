"""The StatefulSet controller: pods with stable names and their own claims, made, replaced and updated in order.

Each sync follows kube-controller-manager's: the set's pods are those its
selector matches *and* whose names make them members (`web-<ordinal>`,
identity.py); its revisions are found or made (revisions.py). Then:

1. Every wanted ordinal (`start` … `start+replicas-1`), lowest first: a
   failed or finished pod is deleted and made again under the same name; a
   missing pod is made at its revision (the current one below the partition,
   else the update one) after its claims (claims.py), unless a claim of a pod
   scaled away is still waiting for the garbage collector; a Pending pod gets
   any claim it lacks; each pod's claims get the owners the retention policy
   asks. With `OrderedReady` (the default) the sync stops at the first pod it
   made, or that is terminating or not yet Running, Ready and available
   (`minReadySeconds`); with `Parallel` it goes on.
2. Pods beyond the wanted ordinals (condemned), highest first: their claims'
   owners are set first (`whenScaled: Delete` hands a claim to its pod, so
   the garbage collector takes it with the pod). `OrderedReady` deletes one
   at a time and waits for it to go; `Parallel` deletes them all.
3. `RollingUpdate`: from the highest ordinal down to `partition`, the first
   pod not at the update revision is deleted (step 1 makes it again at the
   new one), one at a time, waiting for each to be healthy. `OnDelete`
   changes a pod only when someone deletes it.

Status follows (status.py), then history is trimmed to `revisionHistoryLimit`.
Pods and claims are made and deleted through podcontrol.py, with Kubernetes' events.
"""

from __future__ import annotations

import contextlib
from typing import Any

from core import errors
from core.kube import timefmt
from master.client import Env, Informer, obj_key, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim
from master.controllers.statefulset import identity, revisions, status
from master.controllers.statefulset.podcontrol import PodControl
from master.registry.resource import ResourceType

Obj = dict[str, Any]
POD_NAME_LABEL = identity.POD_NAME_LABEL
POD_INDEX_LABEL = identity.POD_INDEX_LABEL
REVISION_LABEL = identity.REVISION_LABEL
_COLLISION_TRIES = 10


def _kind(env: Env, group: str, kind: str) -> ResourceType:
    rt = env.client.catalog.by_kind(group, kind)
    if rt is None:
        raise LookupError(f"the catalog serves no {kind}")
    return rt


def _name(obj: Obj) -> str:
    return str(podutil.meta(obj).get("name"))


def _deleting(obj: Obj) -> bool:
    return bool(podutil.meta(obj).get("deletionTimestamp"))


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
        for inf in (self.sets, self.pods, self.revisions, self.claims):
            inf.add_indexer("namespace", by_namespace)
        self.primary = self.sets
        self.sets.add_handler(lambda old, new: self.enqueue(new or old))
        self.pods.add_handler(self._pod_changed)
        self.claims.add_handler(self._claim_changed)
        self.control = PodControl(self.client, self.kinds, env.recorder, self.claims)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = owner_key(pod, "StatefulSet")
        if key is not None:
            self.queue.add(key)
        elif new is not None:  # an orphan a set may adopt
            self._enqueue_selecting(new, member=True)

    def _claim_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None or _deleting(new):  # a claim going away may let a pod be made again
            self._enqueue_selecting(new or old or {}, member=False)

    def _enqueue_selecting(self, obj: Obj, member: bool) -> None:
        labels = podutil.meta(obj).get("labels") or {}
        for sts in self.sets.by_index("namespace", str(podutil.meta(obj).get("namespace", ""))):
            if member and identity.ordinal(_name(sts), _name(obj)) is None:
                continue
            selector = (sts.get("spec") or {}).get("selector")
            if selector and podutil.selector(selector).matches(labels):
                self.enqueue(sts)

    # --- sync ---------------------------------------------------------------------------------------------
    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        sts = self.sets.get(ns, name)
        if sts is None or _deleting(sts):
            return
        selector = podutil.selector((sts.get("spec") or {}).get("selector"))
        members = [p for p in self.pods.by_index("namespace", ns) if identity.ordinal(name, _name(p)) is not None]
        owned = claim(self.client, self.kinds.pods, self.set_rt, sts, members, selector)
        history = claim(self.client, self.revision_rt, self.set_rt, sts, self.revisions.by_index("namespace", ns),
                        selector)
        current, update, collisions, history = self._revisions(sts, history)
        pods = {_name(p): p for p in owned}
        error: Exception | None = None
        try:
            self._manage(sts, pods, current, update)
        except errors.ApiError as exc:
            error = exc
        self._status(sts, list(pods.values()), current, update, collisions)
        self._trim(sts, history, list(pods.values()), current, update)
        if error is not None:
            raise error

    def _revisions(self, sts: Obj, history: list[Obj]) -> tuple[Obj, Obj, int, list[Obj]]:
        """(current revision, update revision, collision count, every revision), making or renumbering the newest."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        data = revisions.data_of(sts)
        history = sorted(history, key=lambda r: int(r.get("revision") or 0))
        newest = int(history[-1].get("revision") or 0) if history else 0
        equal = [r for r in history if revisions.same_data(r.get("data") or {}, data)]
        if equal and equal[-1] is history[-1]:
            update = equal[-1]
        elif equal:  # back to an older template: that revision is the newest again
            update = self.client.update(self.revision_rt, {**equal[-1], "revision": newest + 1})
            history = [update if _name(r) == _name(update) else r for r in history]
        else:
            update, collisions = self._create_revision(sts, newest + 1, collisions)
            history.append(update)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in history if _name(r) == current_name), update)
        return current, update, collisions, history

    def _create_revision(self, sts: Obj, number: int, collisions: int) -> tuple[Obj, int]:
        ns = str(podutil.meta(sts).get("namespace"))
        owner = podutil.owner_ref(sts, "apps/v1", "StatefulSet")
        for _ in range(_COLLISION_TRIES):
            made = revisions.new_revision(sts, number, owner, collisions)
            try:
                return self.client.create(self.revision_rt, ns, made), collisions
            except errors.AlreadyExists:
                found = self.client.get(self.revision_rt, ns, _name(made))
                if found is not None and revisions.same_data(found.get("data") or {}, made["data"]):
                    return found, collisions
                collisions += 1  # the name is another template's: hash again with the next count
        raise errors.Conflict(message=f"no free name for a revision of StatefulSet {_name(sts)} after "
                                      f"{_COLLISION_TRIES} collisions")

    def _manage(self, sts: Obj, pods: dict[str, Obj], current: Obj, update: Obj) -> None:
        spec, set_name = sts.get("spec") or {}, _name(sts)
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        min_ready = int(spec.get("minReadySeconds") or 0)
        at = timefmt.now()
        wanted = identity.wanted(sts)
        slots: dict[int, Obj | None] = {o: pods.get(f"{set_name}-{o}") for o in wanted}
        for ordinal in wanted:
            pod = slots[ordinal]
            if pod is not None and podutil.is_terminal(pod) and not _deleting(pod):
                self.control.recreate(sts, pod)
                pod = None
            if pod is None:
                slots[ordinal] = self._create(sts, ordinal, current, update)
                if monotonic:
                    return
                continue
            if (pod.get("status") or {}).get("phase") == "Pending":
                self.control.ensure_claims(sts, ordinal, pod)
            if monotonic and _deleting(pod):
                return  # wait for it to go
            if monotonic and not status.available(pod, min_ready, at):
                if min_ready and status.running_and_ready(pod):
                    self.queue.add_after(obj_key(sts), float(min_ready))
                return  # wait for it before the next
            self.control.fix_claims(sts, pod, scaled_down=False)
        condemned = sorted((p for n, p in pods.items() if identity.ordinal(set_name, n) not in wanted),
                           key=lambda p: identity.ordinal(set_name, _name(p)) or 0)
        for pod in condemned:
            self.control.fix_claims(sts, pod, scaled_down=True)
        first_unhealthy = next((p for p in condemned if not status.healthy(p)), None)
        for pod in reversed(condemned):
            if _deleting(pod):
                if monotonic:
                    return
                continue
            if monotonic and pod is not first_unhealthy and not status.available(pod, min_ready, at):
                return
            self.control.delete(sts, pod)
            if monotonic:
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        floor = identity.start(sts) + int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for ordinal in reversed(wanted):
            if ordinal < floor:
                break
            pod = slots[ordinal]
            if pod is None:
                return
            if status.revision_of(pod) != _name(update) and not _deleting(pod):
                self.control.delete(sts, pod)
                return
            if not status.healthy(pod):
                return

    def _revision_for(self, sts: Obj, ordinal: int, current: Obj, update: Obj) -> Obj:
        """The revision a new pod of `ordinal` is made at (Kubernetes' newVersionedStatefulSetPod)."""
        spec = sts.get("spec") or {}
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("rollingUpdate")
        first = identity.start(sts)
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and rolling is None and \
                ordinal < first + int((sts.get("status") or {}).get("currentReplicas") or 0):
            return current
        if rolling is not None and ordinal < first + int(rolling.get("partition") or 0):
            return current
        return update

    def _create(self, sts: Obj, ordinal: int, current: Obj, update: Obj) -> Obj | None:
        revision = self._revision_for(sts, ordinal, current, update)
        return self.control.create(sts, ordinal, revisions.template_of(revision), _name(revision))

    # --- status and history -------------------------------------------------------------------------------
    def _status(self, sts: Obj, pods: list[Obj], current: Obj, update: Obj, collisions: int) -> None:
        new = status.compute(sts, pods, _name(current), _name(update), collisions, timefmt.now())
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and new.get("readyReplicas", 0) != new.get("availableReplicas", 0):
            self.queue.add_after(obj_key(sts), float(min_ready))
        if (sts.get("status") or {}) == new:
            return
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            self.client.update_status(self.set_rt, {**sts, "status": new})

    def _trim(self, sts: Obj, history: list[Obj], pods: list[Obj], current: Obj, update: Obj) -> None:
        keep = {_name(current), _name(update)} | {status.revision_of(p) for p in pods}
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10))
        for old in revisions.surplus(history, keep, limit):
            m = podutil.meta(old)
            self.client.delete(self.revision_rt, str(m.get("namespace")), str(m["name"]), uid=str(m.get("uid")))
