"""Shared informers: caches of one resource type each, kept current by `store.watch`.

As in client-go, an informer lists, then watches from the list's revision and
re-lists (delivering the difference) when the store answers Gone; its handlers
should only enqueue keys. One informer per resource type is shared by every
controller, so each store event is decoded once.

A caller that reads nothing but metadata (the garbage collector) asks for a
*metadata* informer: it caches `{apiVersion, kind, metadata}` projections, so
the master does not keep a decoded copy of every ConfigMap and Secret. If any
caller asks for the full informer of the same type, that one informer caches
full objects for both (a running metadata informer lists again to get them).

Cached objects are shared between controllers: never mutate one, copy it first.
They are cached without `metadata.managedFields`, as kube-controller-manager's
informers strip them (client-go `TransformStripManagedFields`): no controller
reads them, they are often the largest part of an object's metadata, and an
update without them keeps the stored ones.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from core import errors
from master.client.client import obj_key
from master.registry.resource import ResourceType
from master.store.base import Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# (old, new): an addition is (None, new), a deletion (last state, None).
Handler = Callable[[Obj | None, Obj | None], None]
Indexer = Callable[[Obj], Iterable[str]]


def project(rt: ResourceType, obj: Obj) -> Obj:
    """What a metadata informer keeps of `obj`: `apiVersion`, `kind` and `metadata` (shared, not copied)."""
    return {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": obj.get("metadata") or {}}


def strip_managed_fields(obj: Obj) -> Obj:
    """`obj` without `metadata.managedFields` (a shallow copy when it had them; `obj` is left alone)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


class Informer:
    """A cache of one resource type, kept current by a store watch, with handlers and indexes.

    With `full=False` it caches (and hands its handlers) `project`ions only, until
    `require_full` turns it into an informer of full objects.
    """

    def __init__(self, store: Store, rt: ResourceType, stopping: threading.Event, full: bool = True) -> None:
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
        self._full = full  # what new entries are: full objects, or projections
        self._full_ready = threading.Event()  # every cached entry is a full object (a full listing is done)
        self._thread: threading.Thread | None = None

    @property
    def metadata_only(self) -> bool:
        """Whether cached objects are projections (`apiVersion`, `kind`, `metadata`) only."""
        return not self._full

    def require_full(self, timeout: float = 30.0) -> None:
        """Cache full objects from now on. Before `start` this only changes the mode; on a
        running informer it waits until a new listing has replaced every projection, so
        the caller's handlers (added after this returns) only ever see full objects."""
        with self._lock:
            self._full = True
            running = self._thread is not None
        if not running:
            return
        deadline = time.monotonic() + timeout
        while not self._full_ready.wait(0.05):
            if self._stopping.is_set():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"informer {self.rt.plural}: no full listing within {timeout:.0f} s")

    def start(self) -> threading.Thread:
        """Run the list-and-watch loop in a daemon thread (once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self.run, name=f"informer-{self.rt.plural}", daemon=True)
                self._thread.start()
            return self._thread

    def _shape(self, obj: Obj, full: bool | None = None) -> Obj:
        obj = strip_managed_fields(obj)
        return obj if (self._full if full is None else full) else project(self.rt, obj)

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
        full = self._full
        items, revision = self._store.list(self._prefix)
        fresh = {obj_key(o): self._shape(o, full) for o in items}
        del items
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
        if full:  # only now: a handler added after `require_full` returns hears of no projection
            self._full_ready.set()
        return revision

    def _watch(self, revision: int) -> None:
        watcher = self._store.watch(self._prefix, revision)
        try:
            while not self._stopping.is_set():
                if self._full and not self._full_ready.is_set():
                    return  # upgraded to full objects: list again to replace the projections
                event = watcher.next(timeout=1.0)
                if event is None:
                    continue
                obj = self._shape(event.object)
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
        """The shared informer of full objects of `rt` (a metadata informer of `rt` becomes one)."""
        key = rt.prefix("")
        inf = self._informers.get(key)
        if inf is None:
            inf = self._informers[key] = Informer(self._store, rt, self._stopping)
        elif inf.metadata_only:
            inf.require_full()
        return inf

    def metadata_informer(self, rt: ResourceType) -> Informer:
        """The shared informer of `rt` for a caller that reads only `apiVersion`, `kind` and
        `metadata`: projections, unless some caller asks for full objects of `rt` too."""
        key = rt.prefix("")
        inf = self._informers.get(key)
        if inf is None:
            inf = self._informers[key] = Informer(self._store, rt, self._stopping, full=False)
        return inf

    def start(self) -> list[threading.Thread]:
        threads = []
        for key, inf in self._informers.items():
            if key in self._started:
                continue
            self._started.add(key)
            threads.append(inf.start())
        return threads

    def wait_synced(self, timeout: float = 30.0) -> bool:
        return all(inf.synced.wait(timeout) for inf in self._informers.values())
