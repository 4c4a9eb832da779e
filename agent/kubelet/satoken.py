"""Service account tokens for the board's pods: asked of the master (TokenRequest), bound to the pod, renewed
before they expire.

As the kubelet's token manager: a token is kept per (pod, service account,
audience, lifetime) and asked for again once 80 % of its lifetime (at most 24
hours) has passed, so the file in the pod's projected volume always holds a
token with a fifth of its life left. When the master cannot be reached, the
token held is served while it is still valid; a token that cannot be had at
all keeps the pod in ContainerCreating with the master's reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from agent.client import ApiClient, ConnectionFailed, Resource
from agent.kubelet.envs import ConfigError
from core import errors
from core.kube import timefmt

Obj = dict[str, Any]
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
RENEW_FRACTION = 0.8
MAX_RENEW_SECONDS = 24 * 3600.0


class TokenSource:
    def __init__(self, api: ApiClient, clock: Callable[[], float]) -> None:
        self.api, self.clock = api, clock
        self._held: dict[tuple[str, str, str, str, int], tuple[str, float, float]] = {}  # -> (token, got, expires)
        self._lock = threading.Lock()

    def token(self, pod: Obj, audience: str, seconds: int) -> str:
        meta = pod.get("metadata") or {}
        ns, uid = str(meta.get("namespace") or "default"), str(meta.get("uid") or "")
        account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        key = (ns, uid, account, audience, seconds)
        now = self.clock()
        with self._lock:
            held = self._held.get(key)
        if held is not None and now < held[1] + min((held[2] - held[1]) * RENEW_FRACTION, MAX_RENEW_SECONDS):
            return held[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else None, "expirationSeconds": seconds,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta.get("name"),
                                            "uid": uid}}}
        try:
            answer = self.api.create_sub(SERVICEACCOUNTS, account, "token", body, ns)
        except (errors.ApiError, ConnectionFailed) as exc:
            if held is not None and now < held[2]:
                return held[0]
            raise ConfigError(f'failed to fetch token: {exc}') from exc
        status = answer.get("status") or {}
        token = str(status.get("token") or "")
        if not token:
            raise ConfigError("failed to fetch token: the master answered without one")
        expires = timefmt.parse(status.get("expirationTimestamp"))
        expiry = expires.timestamp() if expires is not None else now + seconds
        with self._lock:
            self._held[key] = (token, now, expiry)
        return token

    def forget(self, keep_uids: set[str]) -> None:
        """Drop the tokens of pods no longer on the board."""
        with self._lock:
            for key in [k for k in self._held if k[1] not in keep_uids]:
                del self._held[key]
