"""What the Deployment controller does to its ReplicaSets and its status, shared by its sync, rollout and status steps.

Kubernetes writes these as methods of one controller spread over several Go
files; here they are one object the steps are handed (`rollout.py`,
`status.py`), so no step imports the controller that calls it: find or create
the ReplicaSet of the current template (revision annotations, hash collisions),
scale a ReplicaSet, write the deployment's status, and ask for a later sync.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from core import errors
from master.client import Env, Informer
from master.controllers import podutil
from master.controllers.deployment import util as deployutil
from master.controllers.deployment.util import COMPONENT
from master.controllers.templatehash import template_hash

Obj = dict[str, Any]


class RSControl:
    def __init__(self, env: Env, pods: Informer, requeue_after: Callable[[str, float], None]) -> None:
        self.client = env.client
        self.kinds = env.kinds
        self.recorder = env.recorder
        self.pods = pods  # indexed by "controller" (the owning ReplicaSet's uid)
        self.requeue_after = requeue_after

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
                    _min_ready(existing) != _min_ready(d):
                existing.setdefault("spec", {})["minReadySeconds"] = _min_ready(d)
                existing = self.client.update(self.kinds.replicasets, existing)
            self._record_revision(d, existing, found=True)
            return existing, old_sets
        if not create:
            return None, old_sets
        return self._create_new(d, template, old_sets, new_revision), old_sets

    def _create_new(self, d: Obj, template: Obj, old_sets: list[Obj], new_revision: int) -> Obj:
        m = d["metadata"]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        h = template_hash(template, collisions)
        rs_template = copy.deepcopy(template)
        rs_template.setdefault("metadata", {}).setdefault("labels", {})[deployutil.HASH_LABEL] = h
        selector = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[deployutil.HASH_LABEL] = h
        rs: Obj = {"metadata": {"name": f"{m['name']}-{h}", "namespace": m["namespace"],
                                "labels": dict(rs_template["metadata"]["labels"]),
                                "ownerReferences": [podutil.owner_ref(d, "apps/v1", "Deployment")]},
                   "spec": {"replicas": 0, "minReadySeconds": _min_ready(d),
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
            self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set "
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
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
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


def _min_ready(obj: Obj) -> int:
    """`spec.minReadySeconds`, unset read as the 0 it defaults to (as Kubernetes compares it)."""
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)
