"""The DaemonSet controller: one pod on every eligible node, including nodes that join later.

A node is eligible when the pod template's nodeSelector and required node
affinity match it and the pod tolerates its NoSchedule/NoExecute taints
(DaemonSet pods get Kubernetes' automatic tolerations: not-ready and
unreachable NoExecute, unschedulable and pressure NoSchedule, network-unavailable
for hostNetwork pods). A running pod stays on a node that gains an untolerated
NoSchedule taint (only NoExecute evicts); it counts as misscheduled. Pods are
found as the ReplicaSet controller finds them: those it controls, and orphans
its selector matches, which it adopts (after `--cascade=orphan` and a
re-apply, the old pods are taken over rather than doubled). As in modern
Kubernetes, pods are not bound here: each carries a required node affinity
on `metadata.name` of its node and the scheduler binds it, so resource
checks and `kubectl describe` look the same as for any pod. A template change
rolls out node by node within `maxUnavailable`; `OnDelete` waits for the user.
"""

from __future__ import annotations

import copy
from typing import Any

from core.kube import intstr, timefmt
from master.client import Env, Informer, obj_key, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.daemonset.plan import NodePlan, daemon_tolerations, plan_nodes, status_for, strays
from master.controllers.expectations import Expectations
from master.controllers.keys import by_namespace, owner_key
from master.controllers.ownership import claim
from master.controllers.slowstart import slow_start
from master.controllers.templatehash import template_hash

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"
COMPONENT = "daemonset-controller"


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.expectations = Expectations()
        self.sets: Informer = env.informers.informer(self.kinds.daemonsets)
        self.nodes: Informer = env.informers.informer(self.kinds.nodes)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.pods.add_indexer("namespace", by_namespace)
        self.sets.add_indexer("namespace", by_namespace)
        self.primary = self.sets
        self.sets.add_handler(lambda old, new: self.enqueue(new or old))
        self.nodes.add_handler(lambda old, new: self._all())
        self.pods.add_handler(self._pod_changed)

    def _all(self) -> None:
        for key in self.sets.keys():  # noqa: SIM118 (an Informer, not a dict)
            self.queue.add(key)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        assert pod is not None
        key = owner_key(pod, "DaemonSet")
        before = owner_key(old, "DaemonSet") if old is not None and new is not None else None
        if key is not None:
            if new is None or (podutil.meta(new).get("deletionTimestamp") and
                               not (old and podutil.meta(old).get("deletionTimestamp"))):
                self.expectations.deletion_observed(key, obj_key(pod))
            elif old is None:
                self.expectations.creation_observed(key)
            self.queue.add(key)
        if before is not None and before != key:
            self.queue.add(before)
        if podutil.controller_of(pod) is None and new is not None:  # an orphan: a matching DaemonSet may adopt it
            labels = podutil.meta(new).get("labels") or {}
            for ds in self.sets.by_index("namespace", podutil.meta(new).get("namespace", "")):
                selector = (ds.get("spec") or {}).get("selector")
                if selector and podutil.selector(selector).matches(labels):
                    self.enqueue(ds)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        ds = self.sets.get(ns, name)
        if ds is None:
            self.expectations.forget(key)
            return
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        current_hash = template_hash(template)
        candidates = self.pods.by_index("namespace", ns)
        pods = claim(self.client, self.kinds.pods, self.kinds.daemonsets, ds, candidates,
                     podutil.selector(spec.get("selector")))
        nodes = self.nodes.list()
        plans = plan_nodes(nodes, pods, template, int(spec.get("minReadySeconds") or 0))
        if self.expectations.satisfied(key) and not podutil.meta(ds).get("deletionTimestamp"):
            self._manage(key, ds, plans, current_hash, strays(nodes, pods))
        status = status_for(ds, plans, current_hash, timefmt.now())
        old = ds.get("status") or {}
        if {k: v for k, v in old.items() if v} != {k: v for k, v in status.items() if v}:
            self.client.update_status(self.kinds.daemonsets, {**ds, "status": status})
        min_ready = int(spec.get("minReadySeconds") or 0)
        if min_ready and status.get("numberReady") != status.get("numberAvailable"):
            self.queue.add_after(key, float(min_ready))

    def _manage(self, key: str, ds: Obj, plans: list[NodePlan], current_hash: str, stray: list[Obj]) -> None:
        create_on = [p.node for p in plans if p.should_run and not p.pods and not p.terminating]
        delete: list[Obj] = list(stray)  # their node is gone
        for p in plans:
            if not p.may_stay:
                delete += p.pods
                continue
            failed = [pod for pod in p.pods if (pod.get("status") or {}).get("phase") == "Failed"]
            delete += failed
            alive = sorted((pod for pod in p.pods if pod not in failed),
                           key=lambda x: podutil.meta(x).get("creationTimestamp", ""))
            delete += alive[1:]
        delete += self._rolling_victims(ds, plans, current_hash, delete)
        self.expectations.expect(key, adds=len(create_on), deletions={obj_key(p) for p in delete})
        for pod in delete:
            m = pod["metadata"]
            if self.client.delete(self.kinds.pods, m["namespace"], m["name"], uid=m["uid"]) is None:
                self.expectations.deletion_observed(key, obj_key(pod))
            else:
                self.env.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", COMPONENT)

        def create(i: int) -> None:
            try:
                pod = self._new_pod(ds, create_on[i], current_hash)
                made = self.client.create(self.kinds.pods, ds["metadata"]["namespace"], pod)
            except Exception:
                self.expectations.creation_observed(key)
                raise
            self.env.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {made['metadata']['name']}",
                                    COMPONENT)

        attempted, error = slow_start(len(create_on), create)
        for _ in range(len(create_on) - attempted):
            self.expectations.creation_observed(key)
        if error is not None:
            raise error

    def _rolling_victims(self, ds: Obj, plans: list[NodePlan], current_hash: str, doomed: list[Obj]) -> list[Obj]:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return []
        desired = sum(1 for p in plans if p.should_run)
        budget = intstr.scaled_value((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), desired, True)
        budget = max(budget, 1)
        # As Kubernetes does, pods left on a node that only may keep them (misscheduled) are rolled too.
        unavailable = sum(1 for p in plans if (p.should_run or (p.may_stay and p.pods)) and not p.available)
        victims = []
        for p in plans:
            old = [pod for pod in p.pods if (podutil.meta(pod).get("labels") or {}).get(HASH_LABEL) != current_hash
                   and pod not in doomed]
            if not p.may_stay or not old:
                continue
            if not p.available:
                victims += old  # already unavailable: replacing it costs nothing
            elif unavailable < budget:
                victims += old
                unavailable += 1
        return victims

    def _new_pod(self, ds: Obj, node: Obj, current_hash: str) -> Obj:
        pod = podutil.pod_from_template((ds.get("spec") or {}).get("template") or {}, ds, "apps/v1", "DaemonSet",
                                        f"{ds['metadata']['name']}-", {HASH_LABEL: current_hash})
        spec = pod["spec"]
        term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node["metadata"]["name"]]}]}
        affinity = copy.deepcopy(spec.get("affinity") or {})
        node_affinity = affinity.setdefault("nodeAffinity", {})
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
        spec["affinity"] = affinity
        spec["tolerations"] = daemon_tolerations(spec)
        return pod
