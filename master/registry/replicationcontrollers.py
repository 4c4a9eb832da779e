"""core/v1 ReplicationController's rules: an equality-based selector (a label map) defaulted from the template.

As Kubernetes defaults it: a missing selector is the template's labels, missing
object labels are the template's too, `replicas` is 1. The selector must select
the template's labels, which Kubernetes words as "selector does not match
template labels"; the pods restart `Always`. The controller is the ReplicaSet
controller with a map selector (master/controllers/replicaset.py).
"""

from __future__ import annotations

from typing import Any

from core.errors import Cause
from master.registry.tables import AGE, NAME, Column, TableDef, containers_cell, images_cell, map_selector_cell
from master.registry.workloads import _default_template, _go_map, _template_causes, _Workload

Obj = dict[str, Any]


class ReplicationControllerStrategy(_Workload):
    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not spec.get("selector") and template_labels:
            spec["selector"] = dict(template_labels)
        meta = obj.setdefault("metadata", {})
        if isinstance(meta, dict) and not meta.get("labels") and template_labels:
            meta["labels"] = dict(template_labels)
        spec.setdefault("replicas", 1)
        spec.setdefault("minReadySeconds", 0)
        _default_template(spec)

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        causes = _template_causes(spec, ("Always",), check_selector=False)
        selector = spec.get("selector")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not isinstance(selector, dict) or not selector:
            causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
        elif any(labels.get(k) != v for k, v in selector.items()):
            causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {_go_map(labels)}: selector does "
                                "not match template labels"))
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            causes.append(Cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []  # a ReplicationController's selector may change (Kubernetes allows it)


def _num(o: Obj, *path: str) -> int:
    cur: Any = o
    for p in path:
        cur = cur.get(p) if isinstance(cur, dict) else None
    return int(cur or 0)


TABLE = TableDef((
    NAME,
    Column("Desired", lambda o, n: _num(o, "spec", "replicas"), type="integer", description="Number of desired pods."),
    Column("Current", lambda o, n: _num(o, "status", "replicas"), type="integer",
           description="Number of actual replicas."),
    Column("Ready", lambda o, n: _num(o, "status", "readyReplicas"), type="integer",
           description="The number of ready replicas for this replication controller."),
    AGE,
    Column("Containers", containers_cell(("spec", "template", "spec")), priority=1,
           description="Names of each container in the template."),
    Column("Images", images_cell(("spec", "template", "spec")), priority=1,
           description="Images referenced by each container in the template."),
    Column("Selector", map_selector_cell, priority=1, description="Label selector for pods."),
))
