"""A thin Kubernetes API client for the agent, on `requests` (which the Docker SDK already loads).

The agent needs a dozen calls: get/create/patch/delete of a few kinds, list and
watch of its own pods. A maintained client library (lightkube: +6 MB RSS with
httpx; the official `kubernetes` client: far more) would eat the agent's memory
budget for code it never runs; see docs/agent.md for the measurements. Errors
come back as the `core.errors` hierarchy rebuilt from the server's `Status`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from core import errors
from core.kubeconfig import KubeConfig, ssl_context

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class ConnectionFailed(Exception):
    """The master could not be reached (refused, reset, timed out): a temporary condition."""


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API: `Resource("", "v1", "pods")` → /api/v1/.../pods."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str = "", name: str = "", sub: str = "") -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
        if sub:
            base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
EVENTS = Resource("", "v1", "events")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
SERVICES = Resource("", "v1", "services")
ENDPOINTS = Resource("", "v1", "endpoints")


class _ContextAdapter(HTTPAdapter):
    """An adapter whose TLS context carries the client certificate from memory (no key file on disk)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        super().__init__(pool_connections=2, pool_maxsize=16)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._ctx
        super().init_poolmanager(*args, **kwargs)


class ApiClient:
    """Calls to one master with one identity; safe to share between threads."""

    def __init__(self, cfg: KubeConfig, ca_file: Path, timeout: float = 15.0) -> None:
        self.server = cfg.server.rstrip("/")
        # Every master the agent knows (the configured one first, then what `default/kubernetes` lists):
        # a request that cannot reach `server` moves on to the next, as k3s's agent load balancer does.
        self.servers: list[str] = [self.server]
        self._servers_lock = threading.Lock()
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # never a proxy or CA bundle from the environment
        self.session.verify = str(ca_file)
        self.session.mount("https://", _ContextAdapter(ssl_context(cfg)))
        self.session.headers["User-Agent"] = "pikube-agent"
        self.session.headers["Accept"] = "application/json"

    def close(self) -> None:
        self.session.close()

    def set_servers(self, urls: list[str]) -> None:
        """The masters to fail over to (the one in use stays first while it answers)."""
        with self._servers_lock:
            known = [u.rstrip("/") for u in urls if u]
            if not known:
                return
            self.servers = [self.server, *(u for u in known if u != self.server)]

    def _next_server(self, failed: str) -> bool:
        """After `failed` could not be reached: use the next known master. False when there is none."""
        with self._servers_lock:
            if len(self.servers) < 2:
                return False
            if self.server == failed:
                i = self.servers.index(failed) if failed in self.servers else -1
                self.server = self.servers[(i + 1) % len(self.servers)]
                log.warning("master %s unreachable; using %s", failed, self.server)
            return True

    def master_urls(self) -> list[str]:
        """The masters `default/kubernetes` lists (https://ADDRESS:PORT), as the cluster knows them now."""
        ep = self._json("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
        urls = []
        for subset in ep.get("subsets") or []:
            ports = [p.get("port") for p in subset.get("ports") or [] if p.get("port")]
            for a in subset.get("addresses") or []:
                for port in ports[:1]:
                    host = f"[{a['ip']}]" if ":" in str(a.get("ip")) else a.get("ip")
                    urls.append(f"https://{host}:{port}")
        return urls

    # -- plumbing --------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json", stream: bool = False,
                timeout: float | tuple[float, float] | None = None) -> requests.Response:
        headers = {"Content-Type": content_type} if body is not None else {}
        data = json.dumps(body) if body is not None else None
        tried = 0
        while True:
            server = self.server
            try:
                resp = self.session.request(method, server + path, params=params, data=data, headers=headers,
                                            stream=stream, timeout=timeout or self.timeout)
                break
            except (requests.ConnectionError, requests.ConnectTimeout) as exc:
                tried += 1
                if not self._next_server(server) or tried >= len(self.servers):
                    raise ConnectionFailed(f"{method} {path}: {exc}") from exc
            except requests.RequestException as exc:
                raise ConnectionFailed(f"{method} {path}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                doc = resp.json()
            except ValueError:
                doc = {}
            resp.close()
            if isinstance(doc, dict) and doc.get("kind") == "Status":
                raise errors.from_status(doc, resp.status_code)
            raise errors.from_status({"message": f"{method} {path}: HTTP {resp.status_code}"}, resp.status_code)
        return resp

    def to_every_master(self, method: str, path: str, body: Any) -> int:
        """Send one request to every master known, each on its own (no failover): for what each master keeps
        in memory only, such as usage reports (master/usage.py). How many accepted it; ConnectionFailed
        when none did, with the first failure."""
        with self._servers_lock:
            servers = list(self.servers)
        data, failures, done = json.dumps(body), [], 0
        for server in servers:
            try:
                resp = self.session.request(method, server + path, data=data, timeout=self.timeout,
                                            headers={"Content-Type": "application/json"})
            except requests.RequestException as exc:
                failures.append(f"{server}: {exc}")
                continue
            with resp:
                if resp.status_code < 400:
                    done += 1
                else:
                    failures.append(f"{server}: HTTP {resp.status_code}")
        if not done:
            raise ConnectionFailed(f"{method} {path}: " + "; ".join(failures[:1]))
        return done

    def _json(self, method: str, path: str, **kw: Any) -> Obj:
        resp = self.request(method, path, **kw)
        try:
            doc = resp.json()
        except ValueError as exc:
            raise ConnectionFailed(f"{method} {path}: the answer is not JSON") from exc
        return doc if isinstance(doc, dict) else {}

    # -- verbs -----------------------------------------------------------------------------------

    def get(self, res: Resource, name: str, namespace: str = "") -> Obj:
        return self._json("GET", res.path(namespace, name))

    def list(self, res: Resource, namespace: str = "", **params: str) -> Obj:
        return self._json("GET", res.path(namespace), params=params)

    def create(self, res: Resource, obj: Obj, namespace: str = "") -> Obj:
        return self._json("POST", res.path(namespace), body=obj)

    def create_sub(self, res: Resource, name: str, sub: str, obj: Obj, namespace: str = "") -> Obj:
        """POST to a named object's subresource (a service account's `token`)."""
        return self._json("POST", res.path(namespace, name, sub), body=obj)

    def replace(self, res: Resource, obj: Obj, namespace: str = "", sub: str = "") -> Obj:
        name = obj["metadata"]["name"]
        return self._json("PUT", res.path(namespace, name, sub), body=obj)

    def patch(self, res: Resource, name: str, patch: Obj, namespace: str = "", sub: str = "",
              content_type: str = MERGE_PATCH) -> Obj:
        return self._json("PATCH", res.path(namespace, name, sub), body=patch, content_type=content_type)

    def delete(self, res: Resource, name: str, namespace: str = "", options: Obj | None = None) -> Obj:
        return self._json("DELETE", res.path(namespace, name), body=options)

    def watch(self, res: Resource, namespace: str = "", resource_version: str = "",
              timeout_seconds: int = 300, **params: str) -> Iterator[Obj]:
        """Watch events (`{"type": ..., "object": ...}`) until the server ends the stream.

        Raises `errors.Gone` when `resource_version` is too old (relist), and
        `ConnectionFailed` when the stream breaks.
        """
        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                 "timeoutSeconds": str(timeout_seconds), **params}
        resp = self.request("GET", res.path(namespace), params=query, stream=True,
                            timeout=(self.timeout, timeout_seconds + 30))
        try:
            for line in resp.iter_lines(chunk_size=None):
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise errors.from_status(status, int(status.get("code") or 500))
                yield event
        except (requests.RequestException, ValueError) as exc:
            raise ConnectionFailed(f"watch {res.plural}: {exc}") from exc
        finally:
            resp.close()
PERSISTENTVOLUMECLAIMS = Resource("", "v1", "persistentvolumeclaims")
PERSISTENTVOLUMES = Resource("", "v1", "persistentvolumes")
