"""The ReplicaSet controller: keeps `spec.replicas` pods alive for every ReplicaSet.

Missing pods are created in slow-start batches, surplus ones deleted (not
ready, unscheduled and newest first); pods that match the selector are adopted
and owned pods that stop matching are released. Expectations keep a sync from
acting again before the informer has seen its own creations and deletions.
"""

from __future__ import annotations

import contextlib
from typing import Any

from core import errors
from core.kube import timefmt
from core.kube.selectors import LabelSelector
from master.client import Env, Informer, obj_key, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.expectations import Expectations
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim
from master.controllers.slowstart import slow_start
from master.registry.resource import ResourceType

Obj = dict[str, Any]
BURST = 500  # at most this many creations or deletions per sync
COMPONENT = "replicaset-controller"


class ReplicaSetController(Controller):
    name = "replicaset"
    # The kind this controller keeps replicas of (ReplicationController reuses everything below).
    owner_kind, owner_api_version, owner_component = "ReplicaSet", "apps/v1", COMPONENT

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.expectations = Expectations()
        self.set_rt = self._set_type()
        self.sets: Informer = env.informers.informer(self.set_rt)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.sets.add_indexer("namespace", by_namespace)
        self.pods.add_indexer("namespace", by_namespace)
        self.primary = self.sets
        self.sets.add_handler(lambda old, new: self.enqueue(new or old))
        self.pods.add_handler(self._pod_changed)

    def _set_type(self) -> ResourceType:
        return self.kinds.replicasets

    def _selector(self, spec: Obj) -> LabelSelector:
        return podutil.selector(spec.get("selector"))

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = owner_key(pod, self.owner_kind)
        before = owner_key(old, self.owner_kind) if old is not None and new is not None else None
        if key is not None:
            if new is None or (podutil.meta(new).get("deletionTimestamp") and
                               not (old and podutil.meta(old).get("deletionTimestamp"))):
                self.expectations.deletion_observed(key, obj_key(pod))
            elif old is None:
                self.expectations.creation_observed(key)
            self.queue.add(key)
        if before is not None and before != key:
            self.queue.add(before)
        if key is None and new is not None:  # an orphan: a matching ReplicaSet may adopt it
            labels = podutil.meta(new).get("labels") or {}
            for rs in self.sets.by_index("namespace", podutil.meta(new).get("namespace", "")):
                if (rs.get("spec") or {}).get("selector") and self._selector(rs.get("spec") or {}).matches(labels):
                    self.enqueue(rs)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        rs = self.sets.get(ns, name)
        if rs is None:
            self.expectations.forget(key)
            return
        spec = rs.get("spec") or {}
        selector = self._selector(spec)
        candidates = self.pods.by_index("namespace", ns)
        owned = claim(self.client, self.kinds.pods, self.set_rt, rs, candidates, selector)
        active = [p for p in owned if podutil.is_active(p)]
        error: Exception | None = None
        if self.expectations.satisfied(key) and not podutil.meta(rs).get("deletionTimestamp"):
            error = self._manage(key, rs, active)
        self._update_status(rs, active, error)
        if error is not None:
            raise error

    def _manage(self, key: str, rs: Obj, active: list[Obj]) -> Exception | None:
        m = rs["metadata"]
        diff = len(active) - int((rs.get("spec") or {}).get("replicas", 1))
        if diff < 0:
            count = min(-diff, BURST)
            self.expectations.expect(key, adds=count)
            template = (rs.get("spec") or {}).get("template") or {}

            def create(_: int) -> None:
                pod = podutil.pod_from_template(template, rs, self.owner_api_version, self.owner_kind,
                                                f"{m['name']}-")
                try:
                    made = self.client.create(self.kinds.pods, m["namespace"], pod)
                except Exception:
                    self.expectations.creation_observed(key)
                    raise
                self.env.recorder.event(rs, "Normal", "SuccessfulCreate",
                                        f"Created pod: {made['metadata']['name']}", self.owner_component)

            attempted, error = slow_start(count, create)
            for _ in range(count - attempted):
                self.expectations.creation_observed(key)  # creations skipped after a failed batch
            if error is not None and not isinstance(error, errors.Forbidden):
                self.env.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {error}",
                                        self.owner_component)
            return error
        if diff > 0:
            victims = sorted(active, key=podutil.deletion_rank)[:min(diff, BURST)]
            self.expectations.expect(key, deletions={obj_key(p) for p in victims})
            for pod in victims:
                pm = pod["metadata"]
                if self.client.delete(self.kinds.pods, pm["namespace"], pm["name"], uid=pm["uid"]) is None:
                    self.expectations.deletion_observed(key, obj_key(pod))
                    continue
                self.env.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pm['name']}",
                                        self.owner_component)
        return None

    def _update_status(self, rs: Obj, active: list[Obj], error: Exception | None) -> None:
        spec, m = rs.get("spec") or {}, rs["metadata"]
        min_ready = int(spec.get("minReadySeconds") or 0)
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        at = timefmt.now()
        status: Obj = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(1 for p in active if all(
                (podutil.meta(p).get("labels") or {}).get(k) == v for k, v in template_labels.items())),
            "readyReplicas": sum(1 for p in active if podutil.is_ready(p)),
            "availableReplicas": sum(1 for p in active if podutil.is_available(p, min_ready, at)),
            "observedGeneration": m.get("generation", 1),
        }
        old = rs.get("status") or {}
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if error is not None and not isinstance(error, errors.Conflict):
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                               "message": str(error), "lastTransitionTime": timefmt.rfc3339(at)})
        if conditions:
            status["conditions"] = conditions
        if min_ready and status["readyReplicas"] != status["availableReplicas"]:
            self.queue.add_after(obj_key(rs), float(min_ready))
        status = {k: v for k, v in status.items() if v or k == "replicas"}  # zeros are omitted, as Kubernetes does
        if {k: v for k, v in old.items() if v or k == "replicas"} == status:
            return
        with contextlib.suppress(errors.NotFound):
            self.client.update_status(self.set_rt, {**rs, "status": status})


class ReplicationControllerController(ReplicaSetController):
    """core/v1 ReplicationController: the ReplicaSet machinery with an equality-based selector (a label map)."""

    name = "replicationcontroller"
    owner_kind, owner_api_version, owner_component = "ReplicationController", "v1", "replication-controller"

    def _set_type(self) -> ResourceType:
        rt = self.client.catalog.by_kind("", "ReplicationController")
        if rt is None:
            raise LookupError("the catalog serves no ReplicationController")
        return rt

    def _selector(self, spec: Obj) -> LabelSelector:
        selector = spec.get("selector")
        return LabelSelector.from_set(selector) if selector else LabelSelector.nothing()
