"""The agent's one list-then-watch loop: a cache of one kind, kept current, naming each changed object to its listeners.

Used for this node's pods (`kubelet/podsource.py`: keyed by uid, because a pod
deleted and re-created under the same name is another pod, and filtered with
`fieldSelector=spec.nodeName=NODE`) and for the kinds the network sync and the
service variables read whole (every Node, Service, Endpoints: keyed by
namespace/name). A broken or expired watch (410 Gone) is followed by a relist,
which also reports objects that changed or vanished while nobody was watching.
Listeners are called with the key of each changed object and must only note it
(enqueue a key, kick a loop): they run on the watch's thread.
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
Listener = Callable[[str], None]


def by_name(obj: Obj) -> str:
    """`namespace/name` (just `name` for cluster-scoped objects)."""
    meta = obj.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    return f"{ns}/{name}" if ns else name


def by_uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _rv(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """Every object of `resource` (all namespaces, or those `field_selector` picks), kept current."""

    def __init__(self, api: ApiClient, resource: Resource, on_change: Listener | None = None, *,
                 key: Callable[[Obj], str] = by_name, field_selector: str = "", watch_timeout: int = 300) -> None:
        self.api, self.resource = api, resource
        self._listeners: list[Listener] = [on_change] if on_change is not None else []
        self._key = key
        self._query = {"fieldSelector": field_selector} if field_selector else {}
        self.watch_timeout = watch_timeout
        self._items: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()

    def add_listener(self, on_change: Listener) -> None:
        """Also call `on_change(key)` after each change (one watch can serve several users)."""
        self._listeners = [*self._listeners, on_change]

    def _notify(self, key: str) -> None:
        for listener in self._listeners:
            listener(key)

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._items)

    def get_key(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def get(self, namespace: str, name: str) -> Obj | None:
        if self._key is by_name:
            return self.get_key(f"{namespace}/{name}" if namespace else name)
        with self._lock:
            for obj in self._items.values():
                meta = obj.get("metadata") or {}
                if meta.get("name") == name and (meta.get("namespace") or "") == namespace:
                    return obj
        return None

    def relist(self) -> str:
        """Replace the cache with a fresh listing; listeners hear of every object that differs."""
        listing = self.api.list(self.resource, **self._query)
        fresh = {k: obj for obj in listing.get("items") or [] if (k := self._key(obj))}
        with self._lock:
            old, self._items = self._items, fresh
        self.synced.set()
        for k in sorted(set(old) | set(fresh)):
            if _rv(old.get(k)) != _rv(fresh.get(k)) or (k in old) != (k in fresh):
                self._notify(k)
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set, relisting after any failure."""
        delay = 1.0
        rv = ""
        while not stop.is_set():
            try:
                if not rv:
                    rv = self.relist()
                for event in self.api.watch(self.resource, resource_version=rv, timeout_seconds=self.watch_timeout,
                                            **self._query):
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
        rv = _rv(obj)
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return rv
        k = self._key(obj)
        if not k:
            return rv
        with self._lock:
            if kind == "DELETED":
                self._items.pop(k, None)
            else:
                self._items[k] = obj
        self._notify(k)
        return rv
