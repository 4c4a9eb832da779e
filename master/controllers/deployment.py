"""The Deployment controller: a ReplicaSet per pod template, rolled from old to new by the strategy.

`sync` reads the deployment and the ReplicaSets it owns (adopting and
releasing by selector), finds the one whose template matches (the *new* one,
created with a `pod-template-hash` suffix when missing) and then, as
Kubernetes does: a deleting deployment only gets its status; a paused one or
a scaling event only scales; otherwise `rollout.rolling` or `rollout.recreate`
moves one step and `deploystatus.sync_rollout` reports it. Revisions live in
`deployment.kubernetes.io/revision` annotations, so `kubectl rollout
history|undo` work on what this controller writes.
"""

from __future__ import annotations

import copy
from typing import Any

from core import errors
from master.client import Informer, split_key
from master.controllers import deployutil, podutil
from master.controllers.base import Controller, Env
from master.controllers.deploystatus import sync_status
from master.controllers.ownership import claim
from master.controllers.replicaset import by_namespace, owner_key
from master.controllers.rollout import cleanup, recreate, rolling, scale

Obj = dict[str, Any]
COMPONENT = "deployment-controller"


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.deployments: Informer = env.informers.informer(self.kinds.deployments)
        self.sets: Informer = env.informers.informer(self.kinds.replicasets)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.deployments.add_indexer("namespace", by_namespace)
        self.sets.add_indexer("namespace", by_namespace)
        self.pods.add_indexer("controller", lambda p: [podutil.controller_uid(p)])
        self.primary = self.deployments
        self.deployments.add_handler(lambda old, new: self.enqueue(new or old))
        self.sets.add_handler(self._set_changed)
        self.pods.add_handler(self._pod_changed)

    def _set_changed(self, old: Obj | None, new: Obj | None) -> None:
        rs = new or old
        assert rs is not None
        key = owner_key(rs, "Deployment")
        if key is not None:
            self.queue.add(key)
        elif new is not None:
            labels = podutil.meta(new).get("labels") or {}
            for d in self.deployments.by_index("namespace", podutil.meta(new).get("namespace", "")):
                selector = (d.get("spec") or {}).get("selector")
                if selector and podutil.selector(selector).matches(labels):
                    self.enqueue(d)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None:
            return  # only Recreate waits on pods, and only for them to go away
        assert old is not None
        rs_key = owner_key(old, "ReplicaSet")
        rs = self.sets.get_key(rs_key) if rs_key else None
        key = owner_key(rs, "Deployment") if rs is not None else None
        if key is not None:
            self.queue.add(key)

    # --- sync -------------------------------------------------------------------------------
    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        cached = self.deployments.get(ns, name)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        selector_doc = (d.get("spec") or {}).get("selector") or {}
        if not selector_doc.get("matchLabels") and not selector_doc.get("matchExpressions"):
            self.env.recorder.event(d, "Warning", "SelectingAll",
                                    "This deployment is selecting all pods. A non-empty selector is required.",
                                    COMPONENT)
            return
        selector = podutil.selector(selector_doc)
        sets = [copy.deepcopy(rs) for rs in claim(self.client, self.kinds.replicasets, self.kinds.deployments, d,
                                                  self.sets.by_index("namespace", ns), selector)]
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_sets = self.new_and_old(d, sets, create=False)
            sync_status(self, d, new_rs, old_sets)
            return
        self._check_paused(d)
        if (d.get("spec") or {}).get("paused") or self._scaling_event(d, sets):
            new_rs, old_sets = self.new_and_old(d, sets, create=False)
            scale(self, d, new_rs, old_sets)
            if (d.get("spec") or {}).get("paused"):
                cleanup(self, d, old_sets)
            sync_status(self, d, new_rs, old_sets)
            return
        if deployutil.is_rolling(d):
            rolling(self, d, sets)
        else:
            recreate(self, d, sets)

    def _scaling_event(self, d: Obj, sets: list[Obj]) -> bool:
        new_rs, old_sets = self.new_and_old(d, sets, create=False)
        for rs in [*old_sets, *([new_rs] if new_rs else [])]:
            if deployutil.replicas(rs) <= 0:
                continue
            desired = (podutil.meta(rs).get("annotations") or {}).get(deployutil.DESIRED_REPLICAS)
            if desired is not None and desired != str(deployutil.replicas(d)):
                return True
        return False

    def _check_paused(self, d: Obj) -> None:
        paused = bool((d.get("spec") or {}).get("paused"))
        status = d.setdefault("status", {})
        cond = podutil.condition(d, "Progressing")
        if deployutil.deadline(d) is None:
            return
        if paused and (cond is None or cond.get("reason") != "DeploymentPaused"):
            deployutil.set_condition(status, deployutil.make_condition(
                "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"))
        elif not paused and cond is not None and cond.get("reason") == "DeploymentPaused":
            deployutil.set_condition(status, deployutil.make_condition(
                "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed"))
        else:
            return
        self.write_status(d)

    # --- the new ReplicaSet -----------------------------------------------------------------
    def new_and_old(self, d: Obj, sets: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """(the ReplicaSet for the current template, the others); creates the former if asked."""
        template = (d.get("spec") or {}).get("template") or {}
        ordered = sorted(sets, key=lambda rs: (podutil.meta(rs).get("creationTimestamp", ""),
                                               podutil.meta(rs).get("name", "")))
        existing = next((rs for rs in ordered if deployutil.equal_ignore_hash(
            (rs.get("spec") or {}).get("template") or {}, template)), None)
        old_sets = [rs for rs in ordered if rs is not existing]
        new_revision = deployutil.max_revision(old_sets) + 1
        if existing is not None:
            if deployutil.set_new_rs_annotations(d, existing, new_revision, exists=True) or \
                    (existing.get("spec") or {}).get("minReadySeconds") != (d.get("spec") or {}).get(
                        "minReadySeconds"):
                spec = existing.setdefault("spec", {})
                spec["minReadySeconds"] = (d.get("spec") or {}).get("minReadySeconds") or 0
                existing = self.client.update(self.kinds.replicasets, existing)
            self._record_revision(d, existing, found=True)
            return existing, old_sets
        if not create:
            return None, old_sets
        return self._create_new(d, template, old_sets, new_revision), old_sets

    def _create_new(self, d: Obj, template: Obj, old_sets: list[Obj], new_revision: int) -> Obj:
        m = d["metadata"]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        h = deployutil.template_hash(template, collisions)
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[deployutil.HASH_LABEL] = h
        selector = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[deployutil.HASH_LABEL] = h
        rs: Obj = {"metadata": {"name": f"{m['name']}-{h}", "namespace": m["namespace"],
                                "labels": dict(rs_template["metadata"]["labels"]),
                                "ownerReferences": [podutil.owner_ref(d, "apps/v1", "Deployment")]},
                   "spec": {"replicas": 0, "minReadySeconds": (d.get("spec") or {}).get("minReadySeconds") or 0,
                            "selector": selector, "template": rs_template}}
        rs["spec"]["replicas"] = deployutil.new_rs_replicas(d, [*old_sets, rs], rs)
        deployutil.set_new_rs_annotations(d, rs, new_revision, exists=False)
        try:
            created = self.client.create(self.kinds.replicasets, m["namespace"], rs)
        except errors.AlreadyExists:
            current = self.client.get(self.kinds.replicasets, m["namespace"], rs["metadata"]["name"])
            if current is not None and podutil.controller_uid(current) == m["uid"] and \
                    deployutil.equal_ignore_hash((current.get("spec") or {}).get("template") or {}, template):
                return current
            d.setdefault("status", {})["collisionCount"] = collisions + 1
            self.write_status(d)
            raise
        if deployutil.replicas(created):
            self.env.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set "
                                    f"{created['metadata']['name']} from 0 to {deployutil.replicas(created)}",
                                    COMPONENT)
        self._record_revision(d, created, found=False)
        return created

    def _record_revision(self, d: Obj, rs: Obj, found: bool) -> None:
        """The deployment carries its new ReplicaSet's revision, and a Progressing condition."""
        want = (podutil.meta(rs).get("annotations") or {}).get(deployutil.REVISION)
        annotations = d["metadata"].setdefault("annotations", {})
        if want and annotations.get(deployutil.REVISION) != want:
            annotations[deployutil.REVISION] = want
            updated = self.client.update(self.kinds.deployments, d)
            d["metadata"] = updated["metadata"]
        if deployutil.deadline(d) is None:
            return
        cond = podutil.condition(d, "Progressing")
        if found and cond is not None:
            return
        reason, msg = ("FoundNewReplicaSet", f'Found new replica set "{rs["metadata"]["name"]}"') if found else \
            ("NewReplicaSetCreated", f'Created new replica set "{rs["metadata"]["name"]}"')
        deployutil.set_condition(d.setdefault("status", {}), deployutil.make_condition(
            "Progressing", "True", reason, msg))
        self.write_status(d)

    # --- writes shared with rollout/deploystatus --------------------------------------------
    def write_status(self, d: Obj) -> None:
        updated = self.client.update_status(self.kinds.deployments, d)
        d["metadata"] = updated["metadata"]

    def scale_rs(self, d: Obj, rs: Obj, count: int) -> tuple[bool, Obj]:
        """Set a ReplicaSet's replicas (and its replica annotations); an event when the size changes."""
        size_changed = deployutil.replicas(rs) != count
        if not size_changed and not deployutil.set_replica_annotations(d, copy.deepcopy(rs)):
            return False, rs
        new = copy.deepcopy(rs)
        new.setdefault("spec", {})["replicas"] = count
        deployutil.set_replica_annotations(d, new)
        updated = self.client.update(self.kinds.replicasets, new)
        if size_changed:
            way = "up" if count > deployutil.replicas(rs) else "down"
            self.env.recorder.event(d, "Normal", "ScalingReplicaSet",
                                    f"Scaled {way} replica set {rs['metadata']['name']} from "
                                    f"{deployutil.replicas(rs)} to {count}", COMPONENT)
        return size_changed, updated

    def old_pods_running(self, new_rs: Obj | None, old_sets: list[Obj]) -> bool:
        if sum(deployutil.status_of(rs, "replicas") for rs in old_sets) > 0:
            return True
        for rs in old_sets:
            for pod in self.pods.by_index("controller", rs["metadata"]["uid"]):
                if not podutil.is_terminal(pod):
                    return True
        return False
