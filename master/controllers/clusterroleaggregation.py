"""The cluster-role aggregation controller: an aggregated ClusterRole holds the rules of the roles it selects.

As Kubernetes' clusterrole-aggregation controller: the rules are those of every
other ClusterRole whose labels match one of `clusterRoleSelectors`, in name
order, each rule once; they are written when they differ (nothing else writes
an aggregated role's rules: edits are put back). This is how `admin`, `edit`
and `view` grow when an add-on ships a ClusterRole labelled
`rbac.authorization.k8s.io/aggregate-to-view: "true"`.
"""

from __future__ import annotations

from typing import Any

from core.kube.selectors import LabelSelector
from master.client import Env, Informer
from master.controllers.base import Controller

Obj = dict[str, Any]


class ClusterRoleAggregationController(Controller):
    name = "clusterroleaggregation"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        rt = env.client.catalog.by_kind("rbac.authorization.k8s.io", "ClusterRole")
        if rt is None:
            raise LookupError("the catalog serves no ClusterRole")
        self.rt = rt
        self.roles: Informer = env.informers.informer(rt)
        self.primary = self.roles
        self.roles.add_handler(self._changed)

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        # Any role's labels or rules may feed any aggregated role: look at every aggregated role again.
        for role in self.roles.list():
            if role.get("aggregationRule"):
                self.enqueue(role)

    def sync(self, key: str) -> None:
        name = key.rsplit("/", 1)[-1]
        role = self.roles.get("", name)
        if role is None or not isinstance(role.get("aggregationRule"), dict):
            return
        selectors = []
        for raw in role["aggregationRule"].get("clusterRoleSelectors") or []:
            try:
                selectors.append(LabelSelector.from_dict(raw))
            except ValueError:
                continue
        rules: list[Obj] = []
        for other in sorted(self.roles.list(), key=lambda r: str(r["metadata"]["name"])):
            if other["metadata"]["name"] == name:
                continue
            labels = (other.get("metadata") or {}).get("labels") or {}
            if not any(s.matches(labels) for s in selectors):
                continue
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
        if (role.get("rules") or []) != rules:
            self.client.patch(self.rt, "", name, {"rules": rules})
