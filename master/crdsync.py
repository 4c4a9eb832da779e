"""Keeps this master's catalog serving what the CustomResourceDefinitions in the store declare.

Every master runs one (with etcd, a CRD written through another master must be
served here too): it reads all CRDs once before the master serves, then follows
a watch on their prefix. Each event updates only the CRD it names — its types
are rebuilt when its spec (generation) or deletion changed, never for a status
write — and the catalog's custom types are swapped as a whole, so a new CRD is
served within the watch's latency (milliseconds). Only a summary of each CRD
(names, uid, generation) is kept besides its types: a cert-manager CRD is
hundreds of KB of schema that the store already holds. The name verdicts
(`customresources.accepted_names`) are published with the types, for the CRD
controller's conditions. A watch that falls behind (410) starts over from a
fresh read.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from core import errors
from master.registry.catalog import Catalog
from master.registry.crds import STORE_PREFIX
from master.registry.customresources import accepted_names, types_of
from master.registry.resource import ResourceType
from master.store.base import Store

log = logging.getLogger(__name__)
PREFIX = STORE_PREFIX
Obj = dict[str, Any]
Signature = tuple[str, int, bool]  # uid, generation, being deleted


def _summary(crd: Obj) -> Obj:
    m, spec = crd.get("metadata") or {}, crd.get("spec") or {}
    return {"metadata": {k: m[k] for k in ("name", "uid", "creationTimestamp", "generation", "deletionTimestamp")
                         if k in m},
            "spec": {"group": spec.get("group"), "names": spec.get("names")}}


def _signature(crd: Obj) -> Signature:
    m = crd.get("metadata") or {}
    return str(m.get("uid", "")), int(m.get("generation") or 0), bool(m.get("deletionTimestamp"))


class CrdSync:
    def __init__(self, store: Store, catalog: Catalog, stopping: threading.Event) -> None:
        self.store = store
        self.catalog = catalog
        self.stopping = stopping
        self._summaries: dict[str, Obj] = {}
        self._types: dict[str, tuple[Signature, list[ResourceType]]] = {}
        self.revision = self.relist()

    def relist(self) -> int:
        """Read every CRD and serve what they declare; the revision read at."""
        crds, revision = self.store.list(PREFIX)
        keys = set()
        for crd in crds:
            key = PREFIX + str(crd["metadata"]["name"])
            keys.add(key)
            self._take(key, crd)
        for key in set(self._summaries) - keys:
            self._drop(key)
        self._publish()
        return revision

    def _take(self, key: str, crd: Obj) -> None:
        self._summaries[key] = _summary(crd)
        sig = _signature(crd)
        known = self._types.get(key)
        if known is None or known[0] != sig:
            self._types[key] = (sig, types_of(crd))

    def _drop(self, key: str) -> None:
        self._summaries.pop(key, None)
        self._types.pop(key, None)

    def _publish(self) -> None:
        verdicts = accepted_names(list(self._summaries.values()))
        custom: list[ResourceType] = []
        for key in sorted(self._types):
            name = key.removeprefix(PREFIX)
            if not verdicts.get(name):
                custom += self._types[key][1]
        signature = (tuple((k, sig) for k, (sig, _) in sorted(self._types.items())), tuple(sorted(verdicts.items())))
        if signature != self.catalog.custom_signature:
            self.catalog.set_custom(custom, signature, verdicts)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._follow()
            except errors.Gone:
                log.info("CRD watch fell behind; reading the CRDs again")
            except Exception:  # a store hiccup (etcd leader change …): read again after a pause
                log.exception("following CustomResourceDefinitions failed")
                self.stopping.wait(2.0)
            try:
                self.revision = self.relist()
            except Exception:
                log.exception("reading CustomResourceDefinitions failed")
                self.stopping.wait(2.0)

    def _follow(self) -> None:
        watcher = self.store.watch(PREFIX, self.revision)
        try:
            while not self.stopping.is_set():
                event = watcher.next(1.0)
                # Apply what arrived together, then publish once.
                changed = False
                while event is not None:
                    if event.type == "DELETED":
                        self._drop(event.key)
                    else:
                        self._take(event.key, event.object)
                    self.revision = event.revision
                    changed = True
                    event = watcher.next(0.0)
                if changed:
                    self._publish()
        finally:
            watcher.close()
