"""The agent's HTTPS log endpoint (10250), which the master proxies `kubectl logs` to.

`GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&previous=&timestamps=&sinceSeconds=`
as the kubelet serves it. Only the master may call it: the client must present a
certificate from the cluster CA in the group `system:masters` (nodes, in
`system:nodes`, are refused). The server's own certificate is self-signed; the
master pins its sha256, which the agent publishes on its Node.
"""

from __future__ import annotations

import logging
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from agent.runtime import labels as L
from agent.runtime.docker import Container, DockerRuntime, RuntimeError_

log = logging.getLogger(__name__)
Obj = dict[str, Any]
ADMIN_GROUP = "system:masters"
_TRUE = ("1", "true", "True")


class LogRequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _subject(cert: Obj, field: str) -> list[str]:
    return [str(value) for rdn in cert.get("subject") or () for key, value in rdn if key == field]


def allowed(cert: Obj | None) -> bool:
    return bool(cert) and ADMIN_GROUP in _subject(cert or {}, "organizationName")


def pick(found: list[Container], name: str, previous: bool) -> Container:
    """The instance whose logs to show: the newest, or with `previous` the one before it."""
    insts = sorted([c for c in found if c.container_name == name and c.kind is not L.Kind.SANDBOX],
                   key=lambda c: (c.restart_count, c.created), reverse=True)
    if not insts:
        raise LogRequestError(400, f'container "{name}" is not available (it has not been created yet)')
    if previous:
        if len(insts) < 2:
            raise LogRequestError(400, f'previous terminated container "{name}" not found')
        return insts[1]
    return insts[0]


class LogServer:
    def __init__(self, runtime: DockerRuntime, find_pod: Callable[[str, str], Obj | None], bind: str, port: int,
                 cert: str, key: str, ca: str) -> None:
        self.runtime, self.find_pod = runtime, find_pod
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cafile=ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer((bind, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="logserver", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def stream(self, path: str, query: dict[str, list[str]],
               opened: Callable[[Any], None] = lambda _stream: None) -> Iterator[bytes]:
        parts = [unquote(p) for p in path.split("/") if p]
        if len(parts) != 4 or parts[0] != "containerLogs":
            raise LogRequestError(404, "not found; use /containerLogs/<namespace>/<pod>/<container>")
        _, ns, pod_name, container = parts
        pod = self.find_pod(ns, pod_name)
        if pod is None:
            raise LogRequestError(404, f'pod "{pod_name}" in namespace "{ns}" is not on this node')

        def arg(name: str) -> str:
            return (query.get(name) or [""])[0]

        c = pick(self.runtime.containers(pod["metadata"]["uid"]), container, arg("previous") in _TRUE)
        tail = int(arg("tailLines")) if arg("tailLines").lstrip("-").isdigit() else None
        since = int(time.time() - int(arg("sinceSeconds"))) if arg("sinceSeconds").isdigit() else None
        limit = int(arg("limitBytes")) if arg("limitBytes").isdigit() else None
        follow = arg("follow") in _TRUE and c.running
        try:
            chunks = self.runtime.logs(c.id, follow=follow, timestamps=arg("timestamps") in _TRUE,
                                       tail=tail if tail is None or tail >= 0 else None, since=since)
        except RuntimeError_ as exc:
            raise LogRequestError(500, str(exc)) from exc
        opened(chunks)
        sent = 0
        for chunk in chunks:
            if limit is not None:
                chunk = chunk[:max(0, limit - sent)]
            if chunk:
                sent += len(chunk)
                yield chunk
            if limit is not None and sent >= limit:
                return


def _close_when_client_leaves(conn: Any, stream: Any) -> None:
    """End a followed log when the master hangs up, instead of waiting for the container's next line."""
    try:
        while True:
            readable, _, _ = select.select([conn.fileno()], [], [], 5.0)
            if readable:  # the request was read whole: anything now is a close (FIN or TLS close_notify)
                break
    except (OSError, ValueError):
        pass
    stream.close()


class _Handler(BaseHTTPRequestHandler):
    owner: LogServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("logs: " + format, *args)

    def do_GET(self) -> None:
        conn: Any = self.connection
        if not allowed(conn.getpeercert()):
            self._error(403, "only the master may read logs from this node")
            return
        url = urlsplit(self.path)
        streams: list[Any] = []
        try:
            chunks = self.owner.stream(url.path, parse_qs(url.query), streams.append)
            first = next(chunks, b"")
        except LogRequestError as exc:
            self._error(exc.code, str(exc))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if streams and (parse_qs(url.query).get("follow") or [""])[0] in _TRUE:
            threading.Thread(target=_close_when_client_leaves, args=(conn, streams[0]), daemon=True).start()
        try:
            if first:
                self.wfile.write(first)
                self.wfile.flush()
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def _error(self, code: int, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
