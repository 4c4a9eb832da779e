"""`pods/NAME/log`: the master proxies container logs from the agent of the pod's node.

The agent serves `GET /containerLogs/<ns>/<pod>/<container>` over HTTPS on the
port its Node reports (`status.daemonEndpoints.kubeletEndpoint.Port`) at its
InternalIP; how the master reaches it and trusts it is in master/api/agentlink.py.

The agent's answer is read in waits of `TICK` seconds (`_Upstream`), so a
followed log of a quiet container notices within about that long that the
client went away (master/api/streaming.py), then closes the connection to the
agent (which stops following) and frees its server thread.
"""

from __future__ import annotations

import http.client
import io
import ssl
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import quote, urlencode

from flask import Response, request

from core import errors
from master.api.agentlink import AgentEndpoint, check_pin, client_context, node_endpoint
from master.api.streaming import STREAM_HEADER, TICK, client_gone
from master.registry.context import ApiContext
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

PASSED_ON = ("follow", "tailLines", "previous", "timestamps", "sinceSeconds", "sinceTime", "limitBytes")
CONNECT_TIMEOUT = 10.0


def _container(pod: dict[str, Any], name: str, requested: str) -> str:
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
    if requested:
        if requested not in names:
            raise errors.BadRequest(message=f"container {requested} is not valid for pod {name}")
        return requested
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if default in names:
        return str(default)
    app = [str(c.get("name")) for c in spec.get("containers") or []]
    if len(app) == 1:
        return app[0]
    raise errors.BadRequest(message=f"a container name must be specified for pod {name}, "
                                    f"choose one of: [{' '.join(names)}]")


def _connect(ctx: ApiContext, ep: AgentEndpoint) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection(ep.host, ep.port, timeout=CONNECT_TIMEOUT, context=client_context(ctx))
    try:
        conn.connect()
    except (OSError, ssl.SSLError) as exc:
        conn.close()
        raise errors.ServiceUnavailable(message=f'cannot reach the agent of node "{ep.node}" at '
                                                f"{ep.where}: {exc}") from exc
    sock: Any = conn.sock
    try:
        check_pin(sock, ep)
    except errors.ApiError:
        conn.close()
        raise
    return conn


class ClientGone(ConnectionAbortedError):
    """The client of a log request left while the master waited for the agent."""


class _Upstream(io.RawIOBase):
    """The agent's socket as http.client reads it: one receive in waits of `TICK` seconds, between which the
    client of the request is checked.

    The socket's timeout is `TICK`; a timed-out TLS receive keeps its partial record and is simply retried.
    `idle_limit` bounds how long one read may find nothing (None: forever, for a followed log).
    """

    def __init__(self, sock: ssl.SSLSocket, gone: Callable[[], bool], idle_limit: float | None) -> None:
        super().__init__()
        self.sock = sock
        self.gone = gone
        self.idle_limit = idle_limit
        sock.settimeout(TICK)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        waited = 0.0
        while True:
            try:
                return self.sock.recv_into(buffer)
            except TimeoutError:
                pass
            if self.gone():
                raise ClientGone("the client left")
            waited += TICK
            if self.idle_limit is not None and waited >= self.idle_limit:
                raise TimeoutError(f"the agent sent nothing for {waited:.0f}s")

    def makefile(self, mode: str) -> io.BufferedReader:
        """What http.client's response reads from (it asks its "socket" for a file)."""
        return io.BufferedReader(self)


def proxy(ctx: ApiContext, handlers: Handlers, rt: ResourceType, ns: str, name: str,
          args: Any) -> Response:
    pod = handlers.get(rt, ns, name)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(message=f'pod "{name}" is not yet scheduled to a node: no logs to show')
    container = _container(pod, name, str(args.get("container") or ""))
    ep = node_endpoint(ctx, node_name, f'of pod "{name}"')
    query = urlencode({k: args.get(k) for k in PASSED_ON if args.get(k) not in (None, "")})
    path = f"/containerLogs/{quote(ns)}/{quote(name)}/{quote(container)}" + (f"?{query}" if query else "")
    conn = _connect(ctx, ep)
    try:
        conn.request("GET", path, headers={"Accept": "text/plain"})
        sock = conn.sock
        if not isinstance(sock, ssl.SSLSocket):
            raise OSError("the connection to the agent is closed")
        upstream = _Upstream(sock, client_gone(request.environ), CONNECT_TIMEOUT)
        # As conn.getresponse() would make it, but reading through `upstream` (one request per connection).
        resp = http.client.HTTPResponse(cast(Any, upstream), method="GET")
        resp.begin()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        raise errors.ServiceUnavailable(message=f'the agent of node "{node_name}" failed: {exc}') from exc
    if resp.status != 200:
        text = resp.read(4096).decode(errors="replace").strip()
        conn.close()
        cls = {400: errors.BadRequest, 403: errors.Forbidden, 404: errors.NotFound}.get(resp.status,
                                                                                         errors.InternalError)
        raise cls(message=text or f"the agent answered HTTP {resp.status}")
    follow = str(args.get("follow") or "").lower() in ("1", "true")
    if follow:
        upstream.idle_limit = None  # a followed log may be quiet for hours

    def body() -> Iterator[bytes]:
        try:
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    return
                yield chunk
        except (OSError, http.client.HTTPException):  # also ClientGone and TimeoutError
            return
        finally:
            resp.close()
            conn.close()

    headers = {"Cache-Control": "no-cache, private"}
    if follow:
        headers[STREAM_HEADER] = "1"
    response = Response(body(), status=200, mimetype="text/plain", headers=headers)
    response.call_on_close(conn.close)  # also when the body is never read
    return response
