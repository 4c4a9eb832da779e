"""The node's pods as the master sees them: list, then watch, `fieldSelector=spec.nodeName=NODE`.

A small informer: the cache is keyed by pod uid (a pod deleted and re-created
under the same name is another pod), every change only names the uid to the
sync loop, and a broken or expired watch (410 Gone) is followed by a relist
that also reports pods that vanished while nobody was watching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from agent.client import PODS, ApiClient, ConnectionFailed
from core import errors

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class PodSource:
    def __init__(self, api: ApiClient, node_name: str, on_change: Callable[[str], None],
                 watch_timeout: int = 300) -> None:
        self.api, self.node_name, self._on_change = api, node_name, on_change
        self.watch_timeout = watch_timeout
        self._pods: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()

    def get(self, uid: str) -> Obj | None:
        with self._lock:
            return self._pods.get(uid)

    def pods(self) -> list[Obj]:
        with self._lock:
            return list(self._pods.values())

    def uids(self) -> set[str]:
        with self._lock:
            return set(self._pods)

    def find(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            for pod in self._pods.values():
                meta = pod["metadata"]
                if meta.get("name") == name and meta.get("namespace") == namespace:
                    return pod
        return None

    def _selector(self) -> str:
        return f"spec.nodeName={self.node_name}"

    def relist(self) -> str:
        listing = self.api.list(PODS, fieldSelector=self._selector())
        fresh = {p["metadata"]["uid"]: p for p in listing.get("items") or []}
        with self._lock:
            old = self._pods
            self._pods = fresh
        self.synced.set()
        for uid in set(old) | set(fresh):
            if old.get(uid, {}).get("metadata", {}).get("resourceVersion") != \
                    fresh.get(uid, {}).get("metadata", {}).get("resourceVersion"):
                self._on_change(uid)
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop` is set, relisting after any failure."""
        delay = 1.0
        rv = ""
        while not stop.is_set():
            try:
                if not rv:
                    rv = self.relist()
                for event in self.api.watch(PODS, resource_version=rv, timeout_seconds=self.watch_timeout,
                                            fieldSelector=self._selector()):
                    if stop.is_set():
                        return
                    rv = self._apply(event) or rv
                delay = 1.0
            except errors.Gone:
                rv = ""
            except (errors.ApiError, ConnectionFailed) as exc:
                log.warning("pod watch failed (%s); relisting in %.0fs", exc, delay)
                rv = ""
                stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _apply(self, event: Obj) -> str:
        kind, pod = event.get("type"), event.get("object") or {}
        meta = pod.get("metadata") or {}
        rv = str(meta.get("resourceVersion") or "")
        if kind == "BOOKMARK":
            return rv
        uid = str(meta.get("uid") or "")
        if not uid:
            return rv
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(uid, None)
            else:
                self._pods[uid] = pod
        self._on_change(uid)
        return rv
