"""A minimal Kubernetes REST client over HTTPS for simulated boards and benchmarks.

Simulated boards must talk to the master exactly as a real agent does — TLS
verified against the cluster CA, a client certificate carrying the node's
identity, JSON bodies, watch streams — and must not import `master`. This is
the little of the API they need: get/list/create/patch/delete and a watch
that yields decoded events. Errors come back as the `core.errors` type the
server's `Status` names.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from core import errors

Obj = dict[str, Any]
PATCH_TYPES = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
               "json": "application/json-patch+json"}


@dataclass(frozen=True)
class Credentials:
    """Where the master is and how to prove who we are (client certificate)."""

    server: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


def resource_path(api_version: str, plural: str, namespace: str = "", name: str = "", sub: str = "") -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if sub:
        parts.append(sub)
    return "/".join(parts)


class Api:
    def __init__(self, creds: Credentials, timeout: float = 15.0) -> None:
        self.server = creds.server.rstrip("/")
        self.timeout = timeout
        self._dir = Path(tempfile.mkdtemp(prefix="pikube-sim-"))
        os.chmod(self._dir, 0o700)
        for fname, data in (("ca.pem", creds.ca_pem), ("cert.pem", creds.cert_pem), ("key.pem", creds.key_pem)):
            path = self._dir / fname
            path.write_bytes(data)
            os.chmod(path, 0o600)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        """One session (connection pool) per thread."""
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.trust_env = False
            s.verify = str(self._dir / "ca.pem")
            s.cert = (str(self._dir / "cert.pem"), str(self._dir / "key.pem"))
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()
        shutil.rmtree(self._dir, ignore_errors=True)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                params: dict[str, str] | None = None) -> Obj:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            r = self.session.request(method, self.server + path, data=data, headers=headers, params=params,
                                     timeout=self.timeout)
        except requests.RequestException as exc:
            raise errors.ServiceUnavailable(message=f"{method} {path}: {exc}") from exc
        try:
            doc: Any = r.json()
        except ValueError:
            doc = None
        if r.status_code >= 400:
            if isinstance(doc, dict) and doc.get("kind") == "Status":
                raise errors.from_status(doc, r.status_code)
            raise errors.from_status({"message": r.text[:200]}, r.status_code)
        return doc if isinstance(doc, dict) else {}

    def get(self, path: str, params: dict[str, str] | None = None) -> Obj:
        return self.request("GET", path, params=params)

    def create(self, path: str, obj: Obj) -> Obj:
        return self.request("POST", path, obj)

    def replace(self, path: str, obj: Obj) -> Obj:
        return self.request("PUT", path, obj)

    def patch(self, path: str, body: Any, kind: str = "merge") -> Obj:
        return self.request("PATCH", path, body, PATCH_TYPES[kind])

    def delete(self, path: str, options: Obj | None = None) -> Obj:
        return self.request("DELETE", path, options or {})

    def watch(self, path: str, params: dict[str, str], stop: threading.Event,
              sockets: list[Any] | None = None) -> Iterator[Obj]:
        """Events of a watch (`{"type", "object"}`) until the server ends it or `stop` is set.

        The stream's socket is put in `sockets`: shutting it down from another thread ends
        the watch at once (closing it there could block on the reading thread).
        """
        query = {**params, "watch": "1"}
        try:
            r = self.session.get(self.server + path, params=query, stream=True, timeout=(self.timeout, 60.0),
                                 headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise errors.ServiceUnavailable(message=f"watch {path}: {exc}") from exc
        if sockets is not None:
            conn: Any = getattr(r.raw, "connection", None)  # urllib3 keeps it while the stream is open
            sockets[:] = [getattr(conn, "sock", None)]
        with r:
            if r.status_code >= 400:
                raise errors.from_status(r.json(), r.status_code)
            try:
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line:
                        event: Obj = json.loads(line)
                        if event.get("type") == "ERROR":
                            raise errors.from_status(event.get("object") or {}, 410)
                        yield event
            except (requests.RequestException, AttributeError, ValueError) as exc:
                if not stop.is_set():
                    raise errors.ServiceUnavailable(message=f"watch {path}: {exc}") from exc
