"""Events about pods (Pulled, Created, Started, Killing, BackOff, Unhealthy ...) for `kubectl describe`.

`core.events.Recorder` does the queueing and the deduplication (a repeat bumps
the count, as the kubelet's correlator does); here events are posted through
the agent's HTTPS client as the `kubelet` on this node, and dropped rather than
piled up in memory while the master is unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.client import EVENTS, ApiClient, ConnectionFailed
from core import events
from core.events import NORMAL, WARNING

Obj = dict[str, Any]
__all__ = ["NORMAL", "WARNING", "EventRecorder"]


class ApiSink:
    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def create_event(self, namespace: str, event: Obj) -> None:
        self._api.create(EVENTS, event, namespace=namespace)

    def bump_event(self, namespace: str, name: str, count: int, last_timestamp: str) -> None:
        self._api.patch(EVENTS, name, {"count": count, "lastTimestamp": last_timestamp}, namespace=namespace)


class EventRecorder(events.Recorder):
    def __init__(self, api: ApiClient, node_name: str) -> None:
        super().__init__(ApiSink(api), component="kubelet", host=node_name, max_queue=200, remembered=256,
                         quiet=(ConnectionFailed,), drops_log_level=logging.DEBUG)

    def pod(self, pod: Obj, kind: str, reason: str, message: str, container: str = "") -> None:
        """An event about `pod`, or about one of its containers when `container` is named."""
        self.event({**pod, "kind": "Pod", "apiVersion": "v1"}, kind, reason, message,
                   field_path=f"spec.containers{{{container}}}" if container else "")
