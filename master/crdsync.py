"""Keeps this master's catalog serving what the CustomResourceDefinitions in the store declare.

Every master runs one (with etcd, a CRD written through another master must be
served here too): it reads all CRDs once before the master serves, then follows
a watch on their prefix and swaps the catalog's custom resource types whenever
one changes, so a new CRD is served within the watch's latency (milliseconds),
and a deleted one stops being served once its objects are gone and it is. A
watch that falls behind (410) starts over from a fresh read.
"""

from __future__ import annotations

import logging
import threading

from core import errors
from master.registry.catalog import Catalog
from master.registry.crds import STORE_PREFIX
from master.registry.customresources import served_types
from master.store.base import Store

log = logging.getLogger(__name__)
PREFIX = STORE_PREFIX


def sync_once(store: Store, catalog: Catalog) -> int:
    """Read every CRD and serve what they declare; the revision read at.

    Status writes (conditions) change nothing served: the types are rebuilt only when a CRD's
    spec (its generation), its deletion or the set of CRDs changed."""
    crds, revision = store.list(PREFIX)
    signature = tuple(sorted((str(m.get("name")), str(m.get("uid")), int(m.get("generation") or 0),
                              bool(m.get("deletionTimestamp")))
                             for m in (c.get("metadata") or {} for c in crds)))
    if signature != catalog.custom_signature:
        catalog.set_custom(served_types(crds), signature)
    return revision


class CrdSync:
    def __init__(self, store: Store, catalog: Catalog, stopping: threading.Event) -> None:
        self.store = store
        self.catalog = catalog
        self.stopping = stopping
        self.revision = sync_once(store, catalog)

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
                self.revision = sync_once(self.store, self.catalog)
            except Exception:
                log.exception("reading CustomResourceDefinitions failed")
                self.stopping.wait(2.0)

    def _follow(self) -> None:
        watcher = self.store.watch(PREFIX, self.revision)
        try:
            while not self.stopping.is_set():
                event = watcher.next(1.0)
                if event is None:
                    continue
                # Drain what arrived together, then rebuild once from a consistent read.
                while event is not None:
                    event = watcher.next(0.0)
                self.revision = sync_once(self.store, self.catalog)
        finally:
            watcher.close()
