"""Config maps and secrets the node's pods use, fetched on demand and kept for a minute.

The node may `get` only objects its pods reference (the master's node
authoriser), so there is no watch: like the kubelet's TTL cache, a value is
re-read at most once a minute, which is also how fast a mounted config map
follows a change. As there, a pod new to the agent reads the objects it
references afresh (`expire(pod)`), as does a pod whose start failed on them, so
it sees what was there when it was made or retried, not a minute-old copy. An
object found missing is asked for again after a second, so a pod waiting for it
(`CreateContainerConfigError`, `FailedMount`) starts at its next retry once it
is made. When the master cannot answer, the last value read is used; with
none, the lookup fails with a `ConfigError` naming the object. Housekeeping
drops what no pod references any more (`retain`).

Values are text as Kubernetes holds them: a lone UTF-16 surrogate (which JSON
can spell but UTF-8 cannot encode, and which a Go API server would never hand
out) becomes U+FFFD, as Go's JSON decoder makes it, so env variables and volume
files are always writable.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from typing import Any

from agent.client import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PERSISTENTVOLUMES,
    SECRETS,
    ApiClient,
    ConnectionFailed,
    Resource,
)
from agent.kubelet.envs import ConfigError, Lookup
from core import errors

TTL_SECONDS = 60.0
MISSING_TTL_SECONDS = 1.0
Obj = dict[str, Any]
_SURROGATE = re.compile("[\ud800-\udfff]")


class ObjectCache:
    def __init__(self, api: ApiClient, clock: Callable[[], float], ttl: float = TTL_SECONDS,
                 missing_ttl: float = MISSING_TTL_SECONDS) -> None:
        self.api, self._clock, self.ttl, self.missing_ttl = api, clock, ttl, missing_ttl
        self._data: dict[tuple[str, str, str], tuple[float, dict[str, str] | None]] = {}
        self._lock = threading.Lock()
        self._volumes: dict[tuple[str, str, str], tuple[float, Obj]] = {}

    def lookup(self, sa_token: Callable[[Obj, str, int], str] | None = None) -> Lookup:
        if sa_token is None:
            return Lookup(config_map=self.config_map, secret=self.secret, claim_volume=self.claim_volume)
        return Lookup(config_map=self.config_map, secret=self.secret, claim_volume=self.claim_volume,
                      sa_token=sa_token)

    def claim_volume(self, namespace: str, name: str) -> Obj:
        """The PersistentVolume bound to claim `name`: kept once found (a binding never changes), asked for
        afresh while the claim is missing or unbound (the pod's next retry finds it)."""
        key = ("persistentvolumeclaims", namespace, name)
        with self._lock:
            hit = self._volumes.get(key)
        if hit is not None and self._clock() - hit[0] < self.ttl:
            return hit[1]
        try:
            claim = self.api.get(PERSISTENTVOLUMECLAIMS, name, namespace)
            volume_name = str((claim.get("spec") or {}).get("volumeName") or "")
            if not volume_name or (claim.get("status") or {}).get("phase") == "Lost":
                raise ConfigError(f'persistentvolumeclaim "{name}" is not bound')
            volume = self.api.get(PERSISTENTVOLUMES, volume_name, "")
        except (errors.NotFound, errors.Forbidden) as exc:
            raise ConfigError(f'persistentvolumeclaim "{name}" or its volume not found') from exc
        except (errors.ApiError, ConnectionFailed) as exc:
            if hit is not None:
                return hit[1]
            raise ConfigError(f"failed to get persistentvolumeclaim {namespace}/{name}: {exc}") from exc
        with self._lock:
            self._volumes[key] = (self._clock(), volume)
        return volume

    def config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._get(CONFIGMAPS, namespace, name)

    def secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._get(SECRETS, namespace, name)

    def _get(self, res: Resource, namespace: str, name: str) -> dict[str, str] | None:
        key = (res.plural, namespace, name)
        now = self._clock()
        with self._lock:
            hit = self._data.get(key)
        if hit is not None and now - hit[0] < (self.ttl if hit[1] is not None else self.missing_ttl):
            return hit[1]
        try:
            obj = self.api.get(res, name, namespace)
        except (errors.NotFound, errors.Forbidden):
            value = None
        except (errors.ApiError, ConnectionFailed) as exc:
            if hit is not None:
                return hit[1]  # the last value read, as the kubelet's cache serves it while the master is away
            kind = "configmap" if res is CONFIGMAPS else "secret"
            raise ConfigError(f"failed to get {kind} {namespace}/{name}: {exc}") from exc
        else:
            try:
                value = _decode(obj, res is SECRETS)
            except ValueError as exc:  # data that is not base64
                kind = "configmap" if res is CONFIGMAPS else "secret"
                raise ConfigError(f"{kind} {namespace}/{name} cannot be decoded: {exc}") from exc
        with self._lock:
            self._data[key] = (now, value)
        return value

    def expire(self, pod: Obj) -> None:
        """The next lookup of any object `pod` references asks the master again."""
        with self._lock:
            for key in references(pod):
                self._data.pop(key, None)
                self._volumes.pop(key, None)

    def retain(self, keep: set[tuple[str, str, str]]) -> None:
        """Forget every object but those keyed in `keep` (`references` of the pods still here)."""
        with self._lock:
            for key in [k for k in self._data if k not in keep]:
                del self._data[key]
            for key in [k for k in self._volumes if k not in keep]:
                del self._volumes[key]


def references(pod: Obj) -> set[tuple[str, str, str]]:
    """(plural, namespace, name) of every config map and secret `pod` takes env or volumes from."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    spec = pod.get("spec") or {}
    found: set[tuple[str, str, str]] = set()

    def add(res: Resource, ref: object, field: str = "name") -> None:
        if isinstance(ref, dict) and ref.get(field):
            found.add((res.plural, ns, str(ref[field])))

    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for src in c.get("envFrom") or []:
            add(CONFIGMAPS, src.get("configMapRef"))
            add(SECRETS, src.get("secretRef"))
        for item in c.get("env") or []:
            vf = item.get("valueFrom") or {}
            add(CONFIGMAPS, vf.get("configMapKeyRef"))
            add(SECRETS, vf.get("secretKeyRef"))
    for vol in spec.get("volumes") or []:
        add(CONFIGMAPS, vol.get("configMap"))
        add(SECRETS, vol.get("secret"), "secretName")
        add(PERSISTENTVOLUMECLAIMS, vol.get("persistentVolumeClaim"), "claimName")
        for source in (vol.get("projected") or {}).get("sources") or []:
            add(CONFIGMAPS, source.get("configMap"))
            add(SECRETS, source.get("secret"))
    return found


def text(value: object) -> str:
    """`value` as a string UTF-8 can encode: lone surrogates become U+FFFD, as Go's JSON decoder makes them."""
    return _SURROGATE.sub("\ufffd", str(value))


def _decode(obj: dict[str, object], secret: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    data = obj.get("data") or {}
    if isinstance(data, dict):
        for k, v in data.items():
            out[text(k)] = base64.b64decode(str(v)).decode(errors="replace") if secret else text(v)
    binary = obj.get("binaryData") or {}
    if isinstance(binary, dict):
        for k, v in binary.items():
            out[text(k)] = base64.b64decode(str(v)).decode(errors="replace")
    strings = obj.get("stringData") if secret else None
    if isinstance(strings, dict):
        out.update({text(k): text(v) for k, v in strings.items()})
    return out
