"""The garbage collector: dependents follow their owners out, as `ownerReferences` and deletion policy say.

- Background: an object whose owners are all gone is deleted (dependents that
  still have a live owner only lose the dangling reference).
- Foreground: the API gave the owner a `foregroundDeletion` finalizer; each
  of its blocking dependents (`blockOwnerDeletion`) is deleted in the
  foreground too if this owner is its last live one, or else only loses the
  reference to it (as in Kubernetes); a dependent already being deleted is
  waited for. Once none is left the finalizer is removed, so the owner goes last.
- Orphan: the API gave the owner an `orphan` finalizer; the references to it
  are removed from its dependents, then the finalizer, and the owner goes.

The caches only say when a look is worth it; nothing is deleted on their word.
Before acting on a dependent the collector reads it from the store (its cached
references may be stale: it may just have been orphaned) and confirms in the
store that each owner that seems gone is gone with that uid (and, before it
drops the reference to an owner deleting in the foreground, that another
owner is alive in the store, not just in the cache); the delete or patch then
carries the resourceVersion of that read, so a change in between
(a reference removed, an owner adopted) makes it fail and the decision is made
again. An owner this collector orphaned is remembered (`ORPHANED_SECONDS`), and
a dependent that still names it — one the cache showed only after the owner
went — loses that reference instead of being deleted. Work-queue keys are
`group|plural|ns|name`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from typing import Any

from core import errors
from master.client import Env, Informer
from master.controllers import podutil
from master.controllers.base import Controller
from master.registry.resource import ResourceType

Obj = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
_SKIP = ("events",)
# How an owner reference stands: a live owner; an owner deleting its dependents first
# (foreground); an owner gone from the store; an owner gone that this collector orphaned.
SOLID, WAITING, DANGLING, RELEASED = "solid", "waiting", "dangling", "released"
# How long (and how many) orphaned owners are remembered: far longer than any informer lag.
ORPHANED_SECONDS = 600.0
ORPHANED_LIMIT = 10_000
_ATTEMPTS = 3  # live read + write rounds per sync before a Conflict goes back to the queue


def _owner_uids(obj: Obj) -> list[str]:
    return [str(r.get("uid")) for r in podutil.meta(obj).get("ownerReferences") or [] if isinstance(r, dict)]


def _gc_view(obj: Obj) -> tuple[Any, ...]:
    """What the collector acts on; other changes (status …) need no look."""
    m = podutil.meta(obj)
    return m.get("ownerReferences"), m.get("finalizers"), m.get("deletionTimestamp")


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.types: dict[str, tuple[ResourceType, Informer]] = {}
        self._orphaned = _Remembered(ORPHANED_SECONDS, ORPHANED_LIMIT)
        for rt in self.client.catalog.stored():
            if rt.plural not in _SKIP:
                self._watch_type(rt)
        # Custom resources come and go with their CRDs: their objects are collected as soon as they are served.
        self.client.catalog.on_change(self._custom_changed)

    def _watch_type(self, rt: ResourceType) -> None:
        inf = self.env.informers.metadata_informer(rt)
        inf.add_indexer("owner", _owner_uids)
        inf.add_handler(self._handler(rt))
        # Copy on write: workers iterate the types while the CRD watcher adds one.
        self.types = {**self.types, f"{rt.group}|{rt.plural}": (rt, inf)}

    def _custom_changed(self, custom: list[ResourceType]) -> None:
        if self.env.stopping.is_set():
            return
        added = [rt for rt in custom if rt.conversion is None and f"{rt.group}|{rt.plural}" not in self.types]
        for rt in added:
            self._watch_type(rt)
        if added:
            self.env.informers.start()

    def resync_keys(self) -> list[str]:
        return [self._key(rt, o) for rt, inf in self.types.values() for o in inf.list() if self._interesting(o)]

    @staticmethod
    def _key(rt: ResourceType, obj: Obj) -> str:
        m = podutil.meta(obj)
        return f"{rt.group}|{rt.plural}|{m.get('namespace', '')}|{m.get('name', '')}"

    @staticmethod
    def _interesting(obj: Obj) -> bool:
        m = podutil.meta(obj)
        return bool(m.get("ownerReferences")) or bool(set(m.get("finalizers") or []) & {ORPHAN, FOREGROUND})

    def _handler(self, rt: ResourceType) -> Any:
        def changed(old: Obj | None, new: Obj | None) -> None:
            obj = new or old
            assert obj is not None
            m = podutil.meta(obj)
            if new is None or m.get("deletionTimestamp"):
                for dep in self.dependents(str(m.get("uid"))):
                    self.queue.add(dep[0])
                for ref in m.get("ownerReferences") or []:  # an owner in foreground deletion waits on us
                    self._add_owner(ref, m.get("namespace", ""))
            elif old is not None:  # a blocking reference gone (or no longer blocking): its owner may be waiting on it
                kept = {r.get("uid") for r in m.get("ownerReferences") or [] if r.get("blockOwnerDeletion")}
                for ref in podutil.meta(old).get("ownerReferences") or []:
                    if ref.get("blockOwnerDeletion") and ref.get("uid") not in kept:
                        self._add_owner(ref, m.get("namespace", ""))
            if new is not None and self._interesting(new) and (old is None or _gc_view(old) != _gc_view(new)):
                self.queue.add(self._key(rt, new))
        return changed

    def _add_owner(self, ref: Obj, namespace: str) -> None:
        owner = self._owner_type(ref)
        if owner is not None:
            ns = namespace if owner.namespaced else ""
            self.queue.add(f"{owner.group}|{owner.plural}|{ns}|{ref.get('name', '')}")

    def _owner_type(self, ref: Obj) -> ResourceType | None:
        return self.client.catalog.by_api_version(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))

    def dependents(self, uid: str) -> list[tuple[str, ResourceType, Obj]]:
        return [(self._key(rt, o), rt, o) for rt, inf in self.types.values() for o in inf.by_index("owner", uid)]

    def _lookup(self, ref: Obj, namespace: str, live: bool) -> Obj | None:
        """The owner `ref` names, if it exists with that uid (None: it is gone)."""
        rt = self._owner_type(ref)
        if rt is None:
            return {"metadata": {"uid": ref.get("uid")}}  # a kind we do not serve: never treat it as gone
        ns = namespace if rt.namespaced else ""
        entry = self.types.get(f"{rt.group}|{rt.plural}")
        obj = entry[1].get(ns, str(ref.get("name", ""))) if entry and not live else \
            self.client.get(rt, ns, str(ref.get("name", "")))
        return obj if obj is not None and podutil.meta(obj).get("uid") == ref.get("uid") else None

    def _verdict(self, ref: Obj, namespace: str, live: bool) -> str:
        owner = self._lookup(ref, namespace, live)
        if owner is None:
            return RELEASED if self._orphaned.seen(str(ref.get("uid"))) else DANGLING
        om = podutil.meta(owner)
        return WAITING if om.get("deletionTimestamp") and FOREGROUND in (om.get("finalizers") or []) else SOLID

    def sync(self, key: str) -> None:
        group, plural, ns, name = key.split("|", 3)
        entry = self.types.get(f"{group}|{plural}")
        if entry is None:
            return
        rt, inf = entry
        obj = inf.get(ns, name)
        if obj is None:
            return
        m = podutil.meta(obj)
        finalizers = list(m.get("finalizers") or [])
        if m.get("deletionTimestamp"):
            if ORPHAN in finalizers:
                self._orphan(obj)
                self._remove_finalizer(rt, obj, ORPHAN)
            elif FOREGROUND in finalizers:
                self._foreground(rt, obj)
            return
        if m.get("ownerReferences"):
            self._check_owners(rt, obj)

    def _orphan(self, owner: Obj) -> None:
        uid = podutil.meta(owner)["uid"]
        self._orphaned.add(uid)  # before the owner can go: a dependent the cache has not shown us yet is released
        for _, rt, dep in self.dependents(uid):
            dm = podutil.meta(dep)
            refs = [r for r in dm.get("ownerReferences") or [] if r.get("uid") != uid]
            with contextlib.suppress(errors.NotFound):
                self.client.patch(rt, dm.get("namespace", ""), dm["name"], {
                    "metadata": {"ownerReferences": refs or None, "resourceVersion": dm.get("resourceVersion")}})

    def _foreground(self, rt: ResourceType, owner: Obj) -> None:
        uid = podutil.meta(owner)["uid"]
        blocking = [(drt, dep) for _, drt, dep in self.dependents(uid) if any(
            r.get("uid") == uid and r.get("blockOwnerDeletion")
            for r in podutil.meta(dep).get("ownerReferences") or [])]
        if not blocking:
            self._remove_finalizer(rt, owner, FOREGROUND)
            return
        conflict: errors.Conflict | None = None
        for drt, dep in blocking:
            dm = podutil.meta(dep)
            if dm.get("deletionTimestamp"):
                continue  # on its way out already: we wait for it to be gone
            try:  # deleted if we are its last live owner, else it only loses its reference to us
                self._settle_retrying(drt, dm.get("namespace", ""), dm["name"], str(dm.get("uid")))
            except errors.Conflict as exc:
                conflict = conflict or exc
        if conflict is not None:
            raise conflict  # the others were settled; this owner comes back to try the rest

    def _check_owners(self, rt: ResourceType, cached: Obj) -> None:
        m = podutil.meta(cached)
        ns = m.get("namespace", "")
        refs = [r for r in m.get("ownerReferences") or [] if isinstance(r, dict)]
        if all(self._verdict(r, ns, live=False) == SOLID for r in refs):
            return  # every owner alive in the cache: nothing to do, and no need to ask the store
        self._settle_retrying(rt, ns, m["name"], str(m.get("uid")))

    def _settle_retrying(self, rt: ResourceType, ns: str, name: str, uid: str) -> None:
        for attempt in range(_ATTEMPTS):
            try:
                self._settle(rt, ns, name, uid)
                return
            except errors.Conflict:  # it changed between our read and our write: decide again on the new state
                if attempt == _ATTEMPTS - 1:
                    raise

    def _settle(self, rt: ResourceType, ns: str, name: str, uid: str) -> None:
        """Decide on the object as the store has it now, and write under its resourceVersion.

        The cached copy only said that a look is worth it: its references may be stale
        (just orphaned, say), so the decision rests on a live read of the dependent and
        on the store's word that an owner is gone; the write is refused if the
        dependent changed since that read.
        """
        obj = self.client.get(rt, ns, name)
        if obj is None or podutil.meta(obj).get("uid") != uid:
            return  # gone, or another incarnation (whose own events bring it here)
        m = podutil.meta(obj)
        refs = [r for r in m.get("ownerReferences") or [] if isinstance(r, dict)]
        if not refs or m.get("deletionTimestamp"):
            return
        verdicts = []
        for r in refs:
            v = self._verdict(r, ns, live=False)
            verdicts.append(v if v == SOLID else self._verdict(r, ns, live=True))
        if WAITING in verdicts and SOLID in verdicts:
            # Only a live owner lets us drop the reference to an owner that waits on us (which then goes
            # before us): that one must be alive in the store, not just in the cache.
            verdicts = [self._verdict(r, ns, live=True) if v == SOLID else v
                        for r, v in zip(refs, verdicts, strict=True)]
        rv = str(m.get("resourceVersion") or "")
        if SOLID in verdicts or all(v == RELEASED for v in verdicts):
            # A live owner remains (or every owner orphaned us): we stay, and only the references to owners
            # that are gone go — and those to owners deleting in the foreground, which would wait on us forever.
            keep = [r for r, v in zip(refs, verdicts, strict=True) if v == SOLID]
            if len(keep) < len(refs):
                with contextlib.suppress(errors.NotFound):
                    self.client.patch(rt, ns, name, {"metadata": {"ownerReferences": keep or None,
                                                                  "resourceVersion": rv}})
            return
        # No live owner: the rest are gone (verified in the store) or in foreground deletion.
        blocks = any(r.get("blockOwnerDeletion") for r, v in zip(refs, verdicts, strict=True) if v == WAITING)
        self.client.delete(rt, ns, name, propagation="Foreground" if blocks else "Background", uid=uid,
                           resource_version=rv)

    def _remove_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        """A patch of `metadata.finalizers` alone, guarded by the resourceVersion it was read at."""
        m = podutil.meta(obj)
        keep = [f for f in m.get("finalizers") or [] if f != finalizer]
        with contextlib.suppress(errors.NotFound):
            self.client.patch(rt, m.get("namespace", ""), m["name"], {
                "metadata": {"finalizers": keep or None, "resourceVersion": m.get("resourceVersion")}})


class _Remembered:
    """Uids seen recently (at most `limit`, for `ttl` seconds): the owners this collector orphaned."""

    def __init__(self, ttl: float, limit: int) -> None:
        self._ttl = ttl
        self._limit = limit
        self._lock = threading.Lock()
        self._at: OrderedDict[str, float] = OrderedDict()

    def add(self, uid: str) -> None:
        with self._lock:
            self._at[uid] = time.monotonic()
            self._at.move_to_end(uid)
            self._expire()

    def seen(self, uid: str) -> bool:
        with self._lock:
            self._expire()
            return uid in self._at

    def _expire(self) -> None:
        horizon = time.monotonic() - self._ttl
        while self._at and (len(self._at) > self._limit or next(iter(self._at.values())) < horizon):
            self._at.popitem(last=False)
