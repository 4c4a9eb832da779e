"""A small list-then-watch cache of one kind across the cluster (Nodes, Services, Endpoints) for the network sync.

The pod source (`kubelet/podsource.py`) watches only this node's pods, keyed by
uid, and names each changed pod to the sync loop; the network sync instead
re-reads whole kinds (every Node, every Service) on each sync, so this cache
keeps objects by namespace/name and only says "something changed". A broken or
expired watch (410 Gone) is followed by a relist, which also drops objects
deleted while nobody was watching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from agent.client import ApiClient, ConnectionFailed, Resource
from core import errors

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    """Every object of `resource` (all namespaces), kept current; `on_change()` after each change."""

    def __init__(self, api: ApiClient, resource: Resource, on_change: Callable[[], None],
                 watch_timeout: int = 300) -> None:
        self.api, self.resource = api, resource
        self._listeners: list[Callable[[], None]] = [on_change]
        self.watch_timeout = watch_timeout
        self._items: dict[tuple[str, str], Obj] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()

    def add_listener(self, on_change: Callable[[], None]) -> None:
        """Also call `on_change()` after each change (one watch can serve several users)."""
        self._listeners = [*self._listeners, on_change]

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._items.get((namespace, name))

    def relist(self) -> str:
        listing = self.api.list(self.resource)
        fresh = {_key(obj): obj for obj in listing.get("items") or []}
        with self._lock:
            self._items = fresh
        self.synced.set()
        self._notify()
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set, relisting after any failure."""
        delay = 1.0
        rv = ""
        while not stop.is_set():
            try:
                if not rv:
                    rv = self.relist()
                for event in self.api.watch(self.resource, resource_version=rv, timeout_seconds=self.watch_timeout):
                    if stop.is_set():
                        return
                    rv = self._apply(event) or rv
                delay = 1.0
            except errors.Gone:
                rv = ""
            except (errors.ApiError, ConnectionFailed) as exc:
                log.warning("%s watch failed (%s); relisting in %.0fs", self.resource.plural, exc, delay)
                rv = ""
                stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _apply(self, event: Obj) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return rv
        with self._lock:
            if kind == "DELETED":
                self._items.pop(_key(obj), None)
            else:
                self._items[_key(obj)] = obj
        self._notify()
        return rv
