"""The node's pods as the master sees them: the agent's informer over pods with `fieldSelector=spec.nodeName=NODE`.

Keyed by pod uid (a pod deleted and re-created under the same name is another
pod); every change names the uid to the sync loop, and a relist after a broken
or expired watch also names pods that vanished while nobody was watching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from agent.client import PODS, ApiClient
from agent.informer import Informer, by_uid

Obj = dict[str, Any]


class PodSource:
    def __init__(self, api: ApiClient, node_name: str, on_change: Callable[[str], None],
                 watch_timeout: int = 300) -> None:
        self.node_name = node_name
        self._informer = Informer(api, PODS, on_change, key=by_uid, field_selector=f"spec.nodeName={node_name}",
                                  watch_timeout=watch_timeout)
        self.synced = self._informer.synced

    def get(self, uid: str) -> Obj | None:
        return self._informer.get_key(uid)

    def pods(self) -> list[Obj]:
        return self._informer.items()

    def uids(self) -> set[str]:
        return self._informer.keys()

    def find(self, namespace: str, name: str) -> Obj | None:
        return self._informer.get(namespace, name)

    def relist(self) -> str:
        return self._informer.relist()

    def run(self, stop: threading.Event) -> None:
        self._informer.run(stop)
