"""The Deployment controller: a ReplicaSet per pod template, rolled from old to new by the strategy.

`sync` reads the deployment and the ReplicaSets it owns (adopting and
releasing by selector), finds the one whose template matches (the *new* one,
created with a `pod-template-hash` suffix when missing) and then, as
Kubernetes does: a deleting deployment only gets its status; a paused one or
a scaling event only scales; otherwise `rollout.rolling` or `rollout.recreate`
moves one step and `status.sync_rollout` reports it. Revisions live in
`deployment.kubernetes.io/revision` annotations, so `kubectl rollout
history|undo` work on what this controller writes.
"""

from __future__ import annotations

import copy
from typing import Any

from master.client import Env, Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.deployment import util as deployutil
from master.controllers.deployment.rollout import cleanup, recreate, rolling, scale
from master.controllers.deployment.rscontrol import RSControl
from master.controllers.deployment.status import sync_status
from master.controllers.deployment.util import COMPONENT
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim

Obj = dict[str, Any]


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
        self.rsc = RSControl(env, self.pods, self.queue.add_after)

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
            new_rs, old_sets = self.rsc.new_and_old(d, sets, create=False)
            sync_status(self.rsc, d, new_rs, old_sets)
            return
        self._check_paused(d)
        if (d.get("spec") or {}).get("paused") or self._scaling_event(d, sets):
            new_rs, old_sets = self.rsc.new_and_old(d, sets, create=False)
            scale(self.rsc, d, new_rs, old_sets)
            if (d.get("spec") or {}).get("paused"):
                cleanup(self.rsc, d, old_sets)
            sync_status(self.rsc, d, new_rs, old_sets)
            return
        if deployutil.is_rolling(d):
            rolling(self.rsc, d, sets)
        else:
            recreate(self.rsc, d, sets)

    def _scaling_event(self, d: Obj, sets: list[Obj]) -> bool:
        new_rs, old_sets = self.rsc.new_and_old(d, sets, create=False)
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
        self.rsc.write_status(d)
