"""`pods/NAME/log`: the master proxies container logs from the agent of the pod's node.

The agent serves `GET /containerLogs/<ns>/<pod>/<container>` over HTTPS on the
port its Node reports (`status.daemonEndpoints.kubeletEndpoint.Port`) at its
InternalIP. Its certificate is self-signed; the master trusts it only if its
sha256 is the one the node published in the annotation
`pikube.io/serving-cert-sha256` (only that node may write its Node). The master
authenticates with a client certificate from the cluster CA in
`system:masters`, issued once per master process from `DATA/pki/`.

The agent's answer is read in waits of `TICK` seconds (`_Upstream`), so a
followed log of a quiet container notices within about that long that the
client went away (master/api/streaming.py), then closes the connection to the
agent (which stops following) and frees its server thread.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import quote, urlencode

from flask import Response, request

from core import errors, wellknown
from core.kubeconfig import load_client_cert
from master.api.streaming import STREAM_HEADER, TICK, client_gone
from master.pki import ADMIN_GROUP, issue_client_cert, pki_paths
from master.registry.context import ApiContext
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

SERVING_CERT_ANNOTATION = wellknown.SERVING_CERT_ANNOTATION
CLIENT_CN = "pikube-apiserver-kubelet-client"
PASSED_ON = ("follow", "tailLines", "previous", "timestamps", "sinceSeconds", "sinceTime", "limitBytes")
CONNECT_TIMEOUT = 10.0

_contexts: dict[str, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _client_context(ctx: ApiContext) -> ssl.SSLContext:
    """A TLS context with the master's own client certificate; the server is checked by pin afterwards."""
    key = str(ctx.settings.data_dir)
    with _contexts_lock:
        found = _contexts.get(key)
        if found is None:
            cert_pem, key_pem = issue_client_cert(pki_paths(ctx.settings.data_dir), CLIENT_CN, [ADMIN_GROUP])
            found = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            found.minimum_version = ssl.TLSVersion.TLSv1_2
            found.check_hostname = False
            found.verify_mode = ssl.CERT_NONE  # the certificate is pinned by hash, see _connect
            load_client_cert(found, cert_pem, key_pem)
            _contexts[key] = found
        return found


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


def _endpoint(node: dict[str, Any], node_name: str) -> tuple[str, int, str]:
    status = node.get("status") or {}
    address = next((a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
    port = int(((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0)
    pin = ((node.get("metadata") or {}).get("annotations") or {}).get(SERVING_CERT_ANNOTATION, "")
    if not address or not port or not pin:
        raise errors.ServiceUnavailable(message=f'node "{node_name}" has not published its log endpoint yet')
    return str(address), port, str(pin)


def _connect(ctx: ApiContext, host: str, port: int, pin: str, node_name: str) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection(host, port, timeout=CONNECT_TIMEOUT, context=_client_context(ctx))
    try:
        conn.connect()
    except (OSError, ssl.SSLError) as exc:
        conn.close()
        raise errors.ServiceUnavailable(message=f'cannot reach the agent of node "{node_name}" at '
                                                f"{host}:{port}: {exc}") from exc
    sock: Any = conn.sock
    der = sock.getpeercert(binary_form=True) or b""
    if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), pin.lower()):
        conn.close()
        raise errors.ServiceUnavailable(message=f'the agent at {host}:{port} does not hold the certificate node '
                                                f'"{node_name}" published; refusing to talk to it')
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
    node = ctx.store.get(f"/core/nodes/{node_name}")
    if node is None:
        raise errors.ServiceUnavailable(message=f'node "{node_name}" of pod "{name}" is not registered')
    host, port, pin = _endpoint(node, node_name)
    query = urlencode({k: args.get(k) for k in PASSED_ON if args.get(k) not in (None, "")})
    path = f"/containerLogs/{quote(ns)}/{quote(name)}/{quote(container)}" + (f"?{query}" if query else "")
    conn = _connect(ctx, host, port, pin, node_name)
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
