"""Config maps and secrets the node's pods use, fetched on demand and kept for a minute.

The node may `get` only objects its pods reference (the master's node
authoriser), so there is no watch: like the kubelet's TTL cache, a value is
re-read at most once a minute, which is also how fast a mounted config map
follows a change.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable

from agent.client import CONFIGMAPS, SECRETS, ApiClient, Resource
from agent.kubelet.envs import Lookup
from core import errors

TTL_SECONDS = 60.0


class ObjectCache:
    def __init__(self, api: ApiClient, clock: Callable[[], float], ttl: float = TTL_SECONDS) -> None:
        self.api, self._clock, self.ttl = api, clock, ttl
        self._data: dict[tuple[str, str, str], tuple[float, dict[str, str] | None]] = {}
        self._lock = threading.Lock()

    def lookup(self) -> Lookup:
        return Lookup(config_map=self.config_map, secret=self.secret)

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._get(CONFIGMAPS, namespace, name)

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._get(SECRETS, namespace, name)

    def _get(self, res: Resource, namespace: str, name: str) -> dict[str, str] | None:
        key = (res.plural, namespace, name)
        now = self._clock()
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            obj = self.api.get(res, name, namespace)
        except (errors.NotFound, errors.Forbidden):
            value = None
        else:
            value = _decode(obj, res is SECRETS)
        with self._lock:
            self._data[key] = (now, value)
        return value

    def forget_namespace_objects(self, keep: set[tuple[str, str, str]]) -> None:
        with self._lock:
            for key in [k for k in self._data if k not in keep]:
                del self._data[key]


def _decode(obj: dict[str, object], secret: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    data = obj.get("data") or {}
    if isinstance(data, dict):
        for k, v in data.items():
            out[str(k)] = base64.b64decode(str(v)).decode(errors="replace") if secret else str(v)
    binary = obj.get("binaryData") or {}
    if isinstance(binary, dict):
        for k, v in binary.items():
            out[str(k)] = base64.b64decode(str(v)).decode(errors="replace")
    strings = obj.get("stringData") if secret else None
    if isinstance(strings, dict):
        out.update({str(k): str(v) for k, v in strings.items()})
    return out
