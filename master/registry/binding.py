"""The `binding` subresource: how the scheduler assigns a pod to a node, once."""

from __future__ import annotations

from typing import Any

from core import errors
from core.kube.timefmt import rfc3339
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers, not_found

Obj = dict[str, Any]


def bind(handlers: Handlers, rt: ResourceType, ns: str, name: str, binding: Obj) -> Obj:
    target = binding.get("target")
    node = target.get("name") if isinstance(target, dict) else None
    if not node:
        raise errors.Invalid(message='Binding "' + name + '" is invalid: target.name: Required value',
                             causes=[errors.Cause("target.name", "Required value", "FieldValueRequired")])

    def fn(old: Obj | None) -> Obj | None:
        if old is None:
            raise not_found(rt, name)
        spec = old.setdefault("spec", {})
        if spec.get("nodeName"):
            raise errors.Conflict(message=f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} '
                                          f"is already assigned to node \"{spec['nodeName']}\"",
                                  kind="pods/binding", name=name)
        if old.get("metadata", {}).get("deletionTimestamp"):
            raise errors.Conflict(message=f'Operation cannot be fulfilled on pods/binding "{name}": pod '
                                          f"{name} is being deleted, cannot be assigned to a host",
                                  kind="pods/binding", name=name)
        new = old  # the store hands mutations a fresh copy of its own
        new["spec"]["nodeName"] = str(node)
        status = new.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": rfc3339()})
        status["conditions"] = conds
        return new

    handlers.store.mutate(rt.key(ns, name), fn)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
