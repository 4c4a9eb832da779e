"""The controllers' in-process client: the API's own verbs, with the master's admin authority, and no HTTP.

Controllers and the scheduler run inside the master process, so they do not
speak HTTP. Writes go through `Handlers` — the same defaulting, validation,
finalizers and graceful deletion as the HTTP API — and reads come from the
informers in `informer.py`.
"""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass
from typing import Any

from core import errors
from core.kube.selectors import LabelSelector
from master.registry.binding import bind
from master.registry.catalog import Catalog
from master.registry.listing import ListOptions
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def obj_key(obj: Obj) -> str:
    """`namespace/name` (or `name` for cluster-scoped objects): the key work queues carry."""
    m = obj.get("metadata") or {}
    ns = m.get("namespace") or ""
    return f"{ns}/{m.get('name', '')}" if ns else str(m.get("name", ""))


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a work-queue key."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


@dataclass(frozen=True)
class Kinds:
    """The resource types controllers work with, resolved once from the catalog."""

    pods: ResourceType
    nodes: ResourceType
    namespaces: ResourceType
    services: ResourceType
    endpoints: ResourceType
    events: ResourceType
    serviceaccounts: ResourceType
    leases: ResourceType
    deployments: ResourceType
    replicasets: ResourceType
    daemonsets: ResourceType
    jobs: ResourceType
    persistentvolumes: ResourceType
    configmaps: ResourceType
    secrets: ResourceType
    persistentvolumeclaims: ResourceType
    storageclasses: ResourceType

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> Kinds:
        found: dict[str, ResourceType] = {}
        for name in cls.__dataclass_fields__:
            rt = next((r for r in catalog if r.plural == name), None)
            if rt is None:
                raise LookupError(f"the catalog serves no {name}")
            found[name] = rt
        return cls(**found)


class Client:
    """Verbs on the API with the master's own authority: `Handlers` without HTTP."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self.catalog = handlers.ctx.catalog
        self.kinds = Kinds.from_catalog(self.catalog)

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        """The live object (not a cached copy), or None."""
        try:
            return self.handlers.get(rt, ns, name)
        except errors.NotFound:
            return None

    def list(self, rt: ResourceType, ns: str = "", selector: LabelSelector | None = None) -> list[Obj]:
        items: builtins.list[Obj] = self.handlers.list(rt, ns, ListOptions(label_selector=selector))["items"]
        return items

    def create(self, rt: ResourceType, ns: str, obj: Obj) -> Obj:
        return self.handlers.create(rt, ns, obj)

    def update(self, rt: ResourceType, obj: Obj, subresource: str = "") -> Obj:
        """Replace `obj`; Conflict if it changed since `obj` was read (its resourceVersion)."""
        m = obj["metadata"]
        return self.handlers.update(rt, m.get("namespace", ""), m["name"], obj, subresource)

    def update_status(self, rt: ResourceType, obj: Obj) -> Obj:
        return self.update(rt, obj, "status")

    def patch(self, rt: ResourceType, ns: str, name: str, body: Any, patch_type: str = "merge",
              subresource: str = "") -> Obj:
        return self.handlers.patch(rt, ns, name, patch_type, body, subresource)

    def delete(self, rt: ResourceType, ns: str, name: str, *, propagation: str | None = None,
               grace: int | None = None, uid: str = "", resource_version: str = "") -> Obj | None:
        """Delete (gracefully, by the kind's rules); None if it was already gone.

        With `uid`, only that incarnation of the object is deleted; with `resource_version`,
        only that version of it (Conflict if it changed since): preconditions.
        """
        options: Obj = {}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        try:
            return self.handlers.delete(rt, ns, name, options)
        except errors.NotFound:
            return None

    def bind(self, ns: str, name: str, node: str) -> None:
        bind(self.handlers, self.kinds.pods, ns, name, {"target": {"name": node}})


