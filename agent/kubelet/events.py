"""Events about pods (Pulled, Created, Started, Killing, BackOff, Unhealthy ...) for `kubectl describe`.

Recording never blocks a pod's sync: events go to a bounded queue that one thread
posts. A repeat of the same event bumps its count (as the kubelet's correlator
does) instead of making a new object; when the master is unreachable, events are
dropped rather than piling up in memory.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
from collections import OrderedDict
from typing import Any

from agent.client import EVENTS, ApiClient, ConnectionFailed
from core import errors
from core.kube.timefmt import rfc3339

log = logging.getLogger(__name__)
Obj = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"
_REMEMBERED = 256


class EventRecorder:
    def __init__(self, api: ApiClient, node_name: str) -> None:
        self.api, self.node_name = api, node_name
        self._queue: queue.Queue[tuple[Obj, str, str, str, str] | None] = queue.Queue(maxsize=200)
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int]] = OrderedDict()
        self._thread = threading.Thread(target=self._loop, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def pod(self, pod: Obj, kind: str, reason: str, message: str, container: str = "") -> None:
        meta = pod.get("metadata") or {}
        ref = {"kind": "Pod", "apiVersion": "v1", "namespace": meta.get("namespace"), "name": meta.get("name"),
               "uid": meta.get("uid")}
        if container:
            ref["fieldPath"] = f"spec.containers{{{container}}}"
        try:
            self._queue.put_nowait((ref, kind, reason, message, str(meta.get("namespace", "default"))))
        except queue.Full:
            log.debug("event queue full; dropped %s %s", reason, message)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._post(*item)
            except (errors.ApiError, ConnectionFailed) as exc:
                log.debug("event not recorded: %s", exc)

    def _post(self, ref: Obj, kind: str, reason: str, message: str, ns: str) -> None:
        key = (str(ref.get("uid")), str(ref.get("fieldPath", "")), reason, message)
        now = rfc3339()
        seen = self._seen.get(key)
        if seen is not None:
            name, first, count = seen
            try:
                self.api.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": now}, namespace=ns)
                self._seen[key] = (name, first, count + 1)
                self._seen.move_to_end(key)
                return
            except errors.NotFound:
                pass
        name = f"{ref.get('name')}.{secrets.token_hex(8)}"
        self.api.create(EVENTS, {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref, "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": self.node_name}, "firstTimestamp": now,
            "lastTimestamp": now, "count": 1, "reportingComponent": "kubelet",
            "reportingInstance": self.node_name}, namespace=ns)
        self._seen[key] = (name, now, 1)
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
