"""The agent's HTTPS endpoint (10250), which the master proxies `kubectl logs`, exec, attach, cp and port-forward to.

`GET /containerLogs/<namespace>/<pod>/<container>?follow=&tailLines=&previous=&timestamps=&sinceSeconds=`
as the kubelet serves it; `/exec/...`, `/attach/...` and `/portforward/...` go to
`agent.streams.handler` (WebSocket or SPDY upgrades). Only the master may call it: the client must present a
certificate from the cluster CA in the group `system:masters` (nodes, in
`system:nodes`, are refused). The server's own certificate is self-signed; the
master pins its sha256, which the agent publishes on its Node.
"""

from __future__ import annotations

import itertools
import logging
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

from agent import podproxy
from agent.runtime import labels as L
from agent.runtime.docker import Container, DockerRuntime, RuntimeError_
from agent.streams.handler import SocketIn, StreamHandler, StreamLimits
from core.httpserver import SOCKET_KEY, Limits, Server

log = logging.getLogger(__name__)
Obj = dict[str, Any]
ADMIN_GROUP = "system:masters"
LOCAL_PATH_ROUTE = "/pikube/local-path/"
_TRUE = ("1", "true", "True")


class LogRequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def allowed(environ: Obj) -> bool:
    """Whether the client presented a cluster certificate in the group `system:masters`."""
    if environ.get("SSL_CLIENT_VERIFY") != "SUCCESS":
        return False
    return any(str(v) == ADMIN_GROUP for k, v in environ.items()
               if k == "SSL_CLIENT_S_DN_O" or k.startswith("SSL_CLIENT_S_DN_O_"))


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
                 cert: str, key: str, ca: str, socket_in: SocketIn, stream_limits: StreamLimits | None = None,
                 remove_local_path: Callable[[str], bool] | None = None) -> None:
        self.runtime, self.find_pod = runtime, find_pod
        self.remove_local_path = remove_local_path
        stream_limits = stream_limits or StreamLimits()
        self.streams = StreamHandler(runtime, find_pod, socket_in, stream_limits)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cafile=ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        # Only the master(s) call this port: a few connections, and nobody else gets past the handshake. Each
        # stream holds a connection, so the connection caps stay above the stream cap (a 429 needs a connection).
        conns = stream_limits.max_streams + 32
        self.server = Server(self.wsgi, bind, port, ssl_context=ctx, name="logserver",
                             limits=Limits(max_connections=conns, max_per_client=conns, max_header_bytes=64 * 1024))
        self.server.bind()

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def wsgi(self, environ: Obj, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not allowed(environ):
            return _error(start_response, 403, "only the master may read logs from this node")
        if self.streams.serves(environ["PATH_INFO"]):
            return self.streams(environ, start_response)
        if podproxy.handles(environ["PATH_INFO"]):
            return podproxy.serve(environ, start_response, self.find_pod)
        if environ["PATH_INFO"].startswith(LOCAL_PATH_ROUTE):
            return self._local_path(environ, start_response)
        if environ["REQUEST_METHOD"] != "GET":
            return _error(start_response, 405, "only GET is served here")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        streams: list[Any] = []
        try:
            chunks = self.stream(environ["PATH_INFO"], query, streams.append)
            first = next(chunks, b"")
        except LogRequestError as exc:
            return _error(start_response, exc.code, str(exc))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", "no-cache")])
        sock = environ.get(SOCKET_KEY)
        if streams and (query.get("follow") or [""])[0] in _TRUE and sock is not None:
            threading.Thread(target=_close_when_client_leaves, args=(sock, streams[0]), daemon=True).start()
        return itertools.chain([first] if first else [], chunks)

    def _local_path(self, environ: Obj, start_response: Callable[..., Any]) -> list[bytes]:
        """`DELETE /pikube/local-path/<directory>`: the master reclaiming a released local-path volume."""
        if environ["REQUEST_METHOD"] != "DELETE":
            return _error(start_response, 405, "only DELETE is served here")
        directory = unquote(environ["PATH_INFO"][len(LOCAL_PATH_ROUTE):])
        if self.remove_local_path is None:
            return _error(start_response, 404, "this node keeps no local-path volumes")
        try:
            removed = self.remove_local_path(directory)
        except OSError as exc:
            return _error(start_response, 500, f"cannot remove {directory}: {exc}")
        if not removed:
            return _error(start_response, 400, f"{directory!r} is not a local-path volume's directory")
        log.info("removed local-path volume directory %s", directory)
        body = b"removed\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

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


def _error(start_response: Callable[..., Any], code: int, message: str) -> list[bytes]:
    body = (message + "\n").encode()
    reason = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}.get(code, "Error")
    start_response(f"{code} {reason}", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
