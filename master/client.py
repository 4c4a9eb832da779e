"""The controllers' view of the API: an in-process client and shared informers.

Controllers and the scheduler run inside the master process, so they do not
speak HTTP. Writes go through `Handlers` — the same defaulting, validation,
finalizers and graceful deletion as the HTTP API, with the master's own admin
authority — and reads come from informers: caches kept current by
`store.watch`. As in client-go, an informer lists, then watches from the list's
revision and re-lists (delivering the difference) when the store answers Gone;
its handlers should only enqueue keys. One informer per resource type is shared
by every controller, so each store event is decoded once.

Cached objects are shared between controllers: never mutate one, copy it first.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from master.api.binding import bind
from master.api.catalog import Catalog
from master.api.handlers import Handlers, ListOptions
from master.api.resource import ResourceType
from master.store.base import Store
from pikube import errors
from pikube.kube.selectors import LabelSelector

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# (old, new): an addition is (None, new), a deletion (last state, None).
Handler = Callable[[Obj | None, Obj | None], None]
Indexer = Callable[[Obj], Iterable[str]]


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


class Informer:
    """A cache of one resource type, kept current by a store watch, with handlers and indexes."""

    def __init__(self, store: Store, rt: ResourceType, stopping: threading.Event) -> None:
        self.rt = rt
        self._store = store
        self._stopping = stopping
        self._prefix = rt.prefix("")
        self._lock = threading.RLock()
        self._cache: dict[str, Obj] = {}
        self._handlers: builtins.list[Handler] = []
        self._indexers: dict[str, Indexer] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.synced = threading.Event()

    # --- wiring (before start) ---------------------------------------------------------
    def add_handler(self, handler: Handler) -> None:
        """Register `handler`; on a running informer it is first told about every cached object
        (as additions), as client-go does, so a late controller starts from the whole picture."""
        with self._lock:
            self._handlers = [*self._handlers, handler]
            replay = builtins.list(self._cache.values()) if self.synced.is_set() else []
        for obj in replay:
            handler(None, obj)

    def add_indexer(self, name: str, fn: Indexer) -> None:
        """Index objects by `fn(obj)` values; read with `by_index(name, value)`."""
        with self._lock:
            if name in self._indexers:
                return
            self._indexers[name] = fn
            index: dict[str, set[str]] = {}
            for key, obj in self._cache.items():
                for value in fn(obj):
                    index.setdefault(value, set()).add(key)
            self._indices[name] = index

    # --- reads --------------------------------------------------------------------------
    def get(self, ns: str, name: str) -> Obj | None:
        return self._cache.get(f"{ns}/{name}" if ns else name)

    def get_key(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self, ns: str = "") -> builtins.list[Obj]:
        with self._lock:
            if not ns:
                return builtins.list(self._cache.values())
            return [o for o in self._cache.values() if (o.get("metadata") or {}).get("namespace") == ns]

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return builtins.list(self._cache)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        with self._lock:
            keys = self._indices[name].get(value, ())
            return [self._cache[k] for k in keys if k in self._cache]

    # --- the watch loop -----------------------------------------------------------------
    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                revision = self._relist()
                self.synced.set()
                self._watch(revision)
            except errors.Gone as exc:
                log.info("informer %s: %s; listing again", self.rt.plural, exc.message)
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("informer %s failed; listing again", self.rt.plural)
                self._stopping.wait(1.0)

    def _relist(self) -> int:
        items, revision = self._store.list(self._prefix)
        fresh = {obj_key(o): o for o in items}
        with self._lock:
            old = self._cache
            changes: builtins.list[tuple[Obj | None, Obj | None]] = []
            for key, obj in fresh.items():
                before = old.get(key)
                if before is None or before["metadata"].get("resourceVersion") != obj["metadata"].get(
                        "resourceVersion"):
                    changes.append((before, obj))
            changes += [(obj, None) for key, obj in old.items() if key not in fresh]
            self._cache = fresh
            for name, fn in self._indexers.items():
                index: dict[str, set[str]] = {}
                for key, obj in fresh.items():
                    for value in fn(obj):
                        index.setdefault(value, set()).add(key)
                self._indices[name] = index
        for before, after in changes:
            self._dispatch(before, after)
        return revision

    def _watch(self, revision: int) -> None:
        watcher = self._store.watch(self._prefix, revision)
        try:
            while not self._stopping.is_set():
                event = watcher.next(timeout=1.0)
                if event is None:
                    continue
                obj = event.object
                key = obj_key(obj)
                with self._lock:
                    before = self._cache.get(key)
                    if event.type == "DELETED":
                        self._cache.pop(key, None)
                        after: Obj | None = None
                    else:
                        self._cache[key] = obj
                        after = obj
                    self._reindex(key, before, after)
                self._dispatch(obj if after is None else before, after)
        finally:
            watcher.close()

    def _reindex(self, key: str, before: Obj | None, after: Obj | None) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            old_values = set(fn(before)) if before is not None else set()
            new_values = set(fn(after)) if after is not None else set()
            for value in old_values - new_values:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in new_values - old_values:
                index.setdefault(value, set()).add(key)

    def _dispatch(self, before: Obj | None, after: Obj | None) -> None:
        for handler in self._handlers:
            try:
                handler(before, after)
            except Exception:
                log.exception("informer %s: a handler failed", self.rt.plural)


class InformerFactory:
    """One shared informer per resource type; `start` runs them all."""

    def __init__(self, store: Store, stopping: threading.Event) -> None:
        self._store = store
        self._stopping = stopping
        self._informers: dict[str, Informer] = {}
        self._started: set[str] = set()

    def informer(self, rt: ResourceType) -> Informer:
        key = rt.prefix("")
        if key not in self._informers:
            self._informers[key] = Informer(self._store, rt, self._stopping)
        return self._informers[key]

    def start(self) -> list[threading.Thread]:
        threads = []
        for key, inf in self._informers.items():
            if key in self._started:
                continue
            self._started.add(key)
            t = threading.Thread(target=inf.run, name=f"informer-{inf.rt.plural}", daemon=True)
            t.start()
            threads.append(t)
        return threads

    def wait_synced(self, timeout: float = 30.0) -> bool:
        return all(inf.synced.wait(timeout) for inf in self._informers.values())
