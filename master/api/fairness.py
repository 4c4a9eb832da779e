"""Fairness between clients: no identity takes more than its share of the API; the admin and heartbeats always get in.

In the spirit of Kubernetes' API Priority and Fairness (and k3s's max-in-flight
flags), requests are sorted before any work is done, by who sends them
(authentication is a few dictionary reads of the TLS connection's variables):

- *long-running* requests (watches, followed logs, and later exec, attach,
  port-forward and proxy) hold a connection's thread for minutes or hours;
  each identity may hold `max_long_running_per_identity` of them, and all
  identities but the admin together `max_long_running` (the rest of the
  connections stay free for short requests);
- *short* requests: each identity may have `max_in_flight_per_identity` at
  once, so one client's burst of expensive LISTs queues behind itself;
- exempt: the admin (`system:masters`: whoever holds the cluster's keys is
  never locked out of it) and a node's heartbeats (its Lease and its Node's
  status), which must never wait behind anything, or boards turn NotReady and
  their pods are evicted.

Beyond a cap the answer is `429 Too Many Requests` with `Retry-After`, at once
(client-go, kubectl and the agents back off on it), never a hang.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from core import errors
from master.api.auth import authenticate
from master.registry.satokens import ServiceAccountTokens

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
RETRY_AFTER = 1
_LONG_SUBRESOURCES = re.compile(r"/(exec|attach|portforward|proxy)(/|$)")
_HEARTBEAT = re.compile(r"^/(apis/coordination\.k8s\.io/v1/namespaces/kube-node-lease/leases/[^/]+"
                        r"|api/v1/nodes/[^/]+/status)$")


@dataclass(frozen=True)
class Shares:
    max_long_running: int = 768
    max_long_running_per_identity: int = 64
    max_in_flight_per_identity: int = 32


def long_running(environ: dict[str, Any]) -> bool:
    query = str(environ.get("QUERY_STRING") or "")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if params.get("watch") in ("true", "1"):
        return True
    path = str(environ.get("PATH_INFO") or "")
    if path.endswith("/log") and params.get("follow") in ("true", "1"):
        return True
    return bool(_LONG_SUBRESOURCES.search(path)) or "/watch/" in path


class Fairness:
    """WSGI middleware in front of the API app; counts what each identity holds and refuses beyond its share."""

    def __init__(self, app: WsgiApp, admin_token: str = "", shares: Shares | None = None,
                 tokens: ServiceAccountTokens | None = None) -> None:
        self.app = app
        self.admin_token = admin_token
        self.tokens = tokens
        self.shares = shares or Shares()
        self._lock = threading.Lock()
        self._long: dict[str, int] = {}
        self._long_total = 0
        self._short: dict[str, int] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        identity = authenticate(environ, self.admin_token, self.tokens)
        if identity is None:  # anonymous: only public paths answer; the app says 401 to the rest
            who, exempt = f"anonymous@{environ.get('REMOTE_ADDR', '')}", False
        else:
            who = identity.user
            exempt = identity.is_admin or (identity.node_name is not None and environ.get("REQUEST_METHOD") in (
                "PATCH", "PUT", "POST", "GET") and bool(_HEARTBEAT.match(str(environ.get("PATH_INFO") or ""))))
        if exempt:
            return self.app(environ, start_response)
        is_long = long_running(environ)
        if not self._admit(who, is_long):
            return self._refuse(start_response, is_long)
        try:
            result = self.app(environ, start_response)
        except BaseException:
            self._leave(who, is_long)
            raise
        return _Counted(result, lambda: self._leave(who, is_long))

    def _admit(self, who: str, is_long: bool) -> bool:
        s = self.shares
        with self._lock:
            if is_long:
                if self._long.get(who, 0) >= s.max_long_running_per_identity or self._long_total >= s.max_long_running:
                    return False
                self._long[who] = self._long.get(who, 0) + 1
                self._long_total += 1
            else:
                if self._short.get(who, 0) >= s.max_in_flight_per_identity:
                    return False
                self._short[who] = self._short.get(who, 0) + 1
            return True

    def _leave(self, who: str, is_long: bool) -> None:
        with self._lock:
            table = self._long if is_long else self._short
            left = table.get(who, 1) - 1
            if left:
                table[who] = left
            else:
                table.pop(who, None)
            if is_long:
                self._long_total -= 1

    def held(self, who: str) -> tuple[int, int]:
        """(long-running, short) requests `who` holds now."""
        with self._lock:
            return self._long.get(who, 0), self._short.get(who, 0)

    @staticmethod
    def _refuse(start_response: Callable[..., Any], is_long: bool) -> list[bytes]:
        what = "long-running requests (watches, streams)" if is_long else "requests in flight"
        err = errors.TooManyRequests(message=f"Too many requests, please try again later: this client holds its "
                                             f"share of {what}", retry_after=RETRY_AFTER)
        body = json.dumps(err.status(), separators=(",", ":")).encode() + b"\n"
        start_response("429 Too Many Requests", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body))),
                                                 ("Retry-After", str(RETRY_AFTER))])
        return [body]


class _Counted:
    """The app's response body; `done` runs once when the server closes it (a stream ends when its client leaves)."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self._body = body
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()
