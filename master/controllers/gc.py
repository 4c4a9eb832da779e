"""The garbage collector: dependents follow their owners out, as `ownerReferences` and deletion policy say.

- Background: an object whose owners are all gone is deleted (dependents that
  still have a live owner only lose the dangling reference).
- Foreground: the API gave the owner a `foregroundDeletion` finalizer; its
  blocking dependents (`blockOwnerDeletion`) are deleted in the foreground
  too, and once none is left the finalizer is removed, so the owner goes last.
- Orphan: the API gave the owner an `orphan` finalizer; the references to it
  are removed from its dependents, then the finalizer, and the owner goes.

An owner is looked up in the informer caches and, before anything is deleted
because it seems gone, once more in the store, so a lagging cache never
deletes a dependent of a live owner. Work-queue keys are `group|plural|ns|name`.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from master.api.resource import ResourceType
from master.client import Informer
from master.controllers import podutil
from master.controllers.base import Controller, Env
from pikube import errors

Obj = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
_SKIP = ("events",)


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
        for rt in self.client.catalog:
            if rt.plural in _SKIP:
                continue
            inf = env.informers.informer(rt)
            inf.add_indexer("owner", _owner_uids)
            self.types[f"{rt.group}|{rt.plural}"] = (rt, inf)
        for rt, inf in self.types.values():
            inf.add_handler(self._handler(rt))

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
                    owner = self._owner_type(ref)
                    if owner is not None:
                        ns = m.get("namespace", "") if owner.namespaced else ""
                        self.queue.add(f"{owner.group}|{owner.plural}|{ns}|{ref.get('name', '')}")
            if new is not None and self._interesting(new) and (old is None or _gc_view(old) != _gc_view(new)):
                self.queue.add(self._key(rt, new))
        return changed

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
        for drt, dep in blocking:
            dm = podutil.meta(dep)
            if not dm.get("deletionTimestamp"):
                self.client.delete(drt, dm.get("namespace", ""), dm["name"], propagation="Foreground", uid=dm["uid"])

    def _check_owners(self, rt: ResourceType, obj: Obj) -> None:
        m = podutil.meta(obj)
        refs = [r for r in m.get("ownerReferences") or [] if isinstance(r, dict)]
        owners = [self._lookup(r, m.get("namespace", ""), live=False) for r in refs]
        if any(o is None for o in owners):  # confirm absence against the store before acting on it
            owners = [o or self._lookup(r, m.get("namespace", ""), live=True)
                      for r, o in zip(refs, owners, strict=True)]
        solid = [r for r, o in zip(refs, owners, strict=True) if o is not None and not (
            podutil.meta(o).get("deletionTimestamp") and FOREGROUND in (podutil.meta(o).get("finalizers") or []))]
        dangling = [r for r, o in zip(refs, owners, strict=True) if o is None]
        if solid:
            if dangling:
                keep = [r for r in refs if r not in dangling]
                with contextlib.suppress(errors.NotFound):
                    self.client.patch(rt, m.get("namespace", ""), m["name"], {
                        "metadata": {"ownerReferences": keep, "resourceVersion": m.get("resourceVersion")}})
            return
        waiting = len(dangling) < len(refs)  # the rest are owners in foreground deletion
        blocks = any(r.get("blockOwnerDeletion") for r in refs if r not in dangling)
        policy = "Foreground" if waiting and blocks else "Background"
        self.client.delete(rt, m.get("namespace", ""), m["name"], propagation=policy, uid=m["uid"])

    def _remove_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        with contextlib.suppress(errors.NotFound):
            self.client.update(rt, new)
