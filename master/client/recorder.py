"""The controllers' event recorder: `core.events.Recorder` writing through the in-process client.

Events leave the controllers' hot path at once (see `core/events.py` for the
queue and the deduplication); here they are stored with the master's own
authority, as the API would store them.
"""

from __future__ import annotations

import threading
from typing import Any

from core import events
from master.client.client import Client

Obj = dict[str, Any]


class ClientSink:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create_event(self, namespace: str, event: Obj) -> None:
        self._client.create(self._client.kinds.events, namespace, event)

    def bump_event(self, namespace: str, name: str, count: int, last_timestamp: str) -> None:
        self._client.patch(self._client.kinds.events, namespace, name,
                           {"count": count, "lastTimestamp": last_timestamp})


class Recorder(events.Recorder):
    """Events from the controllers; each call names its component (`deployment-controller` ...)."""

    def __init__(self, client: Client, stopping: threading.Event, writers: int = 1, max_queue: int = 10000) -> None:
        super().__init__(ClientSink(client), stopping, writers=writers, max_queue=max_queue)
