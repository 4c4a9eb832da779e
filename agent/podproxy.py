"""`/podProxy/NS/POD/SCHEME/PORT/PATH`: how the master's `pods/…/proxy` and `services/…/proxy` reach a pod.

The master has no route to the pod network, so it asks the agent of the pod's
board (on the agent's HTTPS port, master-only like every path there) to send
one HTTP request to the pod and stream the answer back. The agent forwards
only to a pod bound to its own board, at the IP its own pod status gave it —
never to an address the caller names, so the endpoint is no open proxy into
the LAN or the pod network.

Bounds: the request body (`MAX_BODY`, beyond it 413), the connect
(`CONNECT_TIMEOUT`), the wait for the answer's head and between two reads of
its body (`READ_TIMEOUT`), and the whole answer (`MAX_RESPONSE` bytes). The
answer is streamed as it arrives. The agent's own failures (no such pod here,
the pod refuses the connection, a timeout) carry the header
`X-Pikube-Proxy-Error`, so the master tells them from the pod's own answers,
which pass unchanged (a pod's 404 stays the pod's 404).

An upgrade request (a WebSocket to a dashboard in a pod) is sent to the pod
and then relayed raw both ways on the request's thread (core/relay.py), the
pod's answer head included, so the master sees the pod's `101` (or refusal) as
the pod wrote it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from core import relay
from core.httpserver import HIJACK_KEY, Hijacked

Obj = dict[str, Any]
PREFIX = "/podProxy/"
ERROR_HEADER = "X-Pikube-Proxy-Error"
MAX_BODY = 3 * 1024 * 1024
MAX_RESPONSE = 512 * 1024 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# A relayed upgrade with no byte either way for this long ends (the master ends it sooner by its own
# --streaming-connection-idle-timeout, which closes this connection).
UPGRADE_IDLE_TIMEOUT = 4 * 3600.0
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length", "expect", "authorization"}
_REASONS = {400: "Bad Request", 404: "Not Found", 413: "Payload Too Large", 502: "Bad Gateway",
            504: "Gateway Timeout"}


class ProxyError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def handles(path: str) -> bool:
    return path.startswith(PREFIX)


def parse(path: str) -> tuple[str, str, str, int, str]:
    """(namespace, pod, scheme, port, path on the pod) from `/podProxy/NS/POD/SCHEME/PORT[/PATH]`."""
    parts = path[len(PREFIX):].split("/", 4)
    if len(parts) < 4:
        raise ProxyError(404, "not found; use /podProxy/<namespace>/<pod>/<scheme>/<port>/<path>")
    ns, pod, scheme, port = (unquote(p) for p in parts[:4])
    if scheme not in ("http", "https"):
        raise ProxyError(400, f'unknown scheme "{scheme}"')
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ProxyError(400, f'invalid port "{port}"')
    return ns, pod, scheme, int(port), "/" + (parts[4] if len(parts) > 4 else "")


def serve(environ: Obj, start_response: Callable[..., Any], find_pod: Callable[[str, str], Obj | None]) -> Iterable[
        bytes]:
    """The WSGI answer to one `/podProxy/…` request (the caller has checked that it comes from the master)."""
    raw_path = str(environ.get("RAW_URI") or environ.get("PATH_INFO") or "").split("?", 1)[0]
    query = str(environ.get("QUERY_STRING") or "")
    try:
        ns, pod_name, scheme, port, path = parse(raw_path)
        pod = find_pod(ns, pod_name)
        if pod is None:
            raise ProxyError(404, f'pod "{pod_name}" in namespace "{ns}" is not on this node')
        ip = str((pod.get("status") or {}).get("podIP") or "")
        if not ip:
            raise ProxyError(502, f'pod "{pod_name}" has no IP address yet')
        if _is_upgrade(environ) and HIJACK_KEY in environ:
            return _upgrade(environ, start_response, scheme, ip, port, path + (f"?{query}" if query else ""))
        body = _body(environ)
        conn = _connection(scheme, ip, port)
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(READ_TIMEOUT)
            conn.putrequest(str(environ["REQUEST_METHOD"]), path + (f"?{query}" if query else ""),
                            skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"{ip}:{port}")
            for name, value in _headers(environ):
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders(body)
            resp = conn.getresponse()
        except TimeoutError as exc:
            conn.close()
            raise ProxyError(504, f"the pod at {ip}:{port} did not answer within {READ_TIMEOUT:.0f}s") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise ProxyError(502, f"dial tcp {ip}:{port}: {exc}") from exc
    except ProxyError as exc:
        text = (str(exc) + "\n").encode()
        start_response(f"{exc.code} {_REASONS.get(exc.code, 'Error')}",
                       [("Content-Type", "text/plain"), ("Content-Length", str(len(text))), (ERROR_HEADER, "1")])
        return [text]
    headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP]
    length = resp.getheader("Content-Length")
    if length is not None and length.isdigit():
        headers.append(("Content-Length", length))
    start_response(f"{resp.status} {resp.reason}", headers)
    return _stream(conn, resp)


def _is_upgrade(environ: Obj) -> bool:
    connection = {t.strip().lower() for t in str(environ.get("HTTP_CONNECTION") or "").split(",")}
    return "upgrade" in connection and bool(environ.get("HTTP_UPGRADE"))


def _upgrade(environ: Obj, start_response: Callable[..., Any], scheme: str, ip: str, port: int,
             target: str) -> Iterable[bytes]:
    """A protocol switch (a WebSocket): send the request to the pod, then take the master's connection over and
    relay bytes both ways, the pod's answer head included, whatever it is (core/relay.py)."""
    try:
        pod = socket.create_connection((ip, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise ProxyError(502, f"dial tcp {ip}:{port}: {exc}") from exc
    try:
        if scheme == "https":
            pod = _unverified().wrap_socket(pod)
        lines = [f"{environ['REQUEST_METHOD']} {target} HTTP/1.1", f"Host: {ip}:{port}",
                 *(f"{k}: {v}" for k, v in _headers(environ)),
                 "Connection: Upgrade", f"Upgrade: {environ['HTTP_UPGRADE']}"]
        pod.settimeout(READ_TIMEOUT)
        pod.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    except (OSError, ssl.SSLError) as exc:
        pod.close()
        raise ProxyError(502, f"{ip}:{port}: {exc}") from exc
    taken: Hijacked = environ[HIJACK_KEY]()
    try:
        relay.relay(taken.sock, taken.buffered, pod, b"", UPGRADE_IDLE_TIMEOUT)
    finally:
        pod.close()
    start_response("101 Switching Protocols", [])
    return []


def _unverified() -> ssl.SSLContext:
    """A pod's certificate names no pod IP: like kube-apiserver, do not verify it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connection(scheme: str, ip: str, port: int) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(ip, port, timeout=CONNECT_TIMEOUT, context=_unverified())
    return http.client.HTTPConnection(ip, port, timeout=CONNECT_TIMEOUT)


def _headers(environ: Obj) -> Iterator[tuple[str, str]]:
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
            if name.lower() not in _HOP:
                yield name, str(value)
    if environ.get("CONTENT_TYPE"):
        yield "Content-Type", str(environ["CONTENT_TYPE"])


def _body(environ: Obj) -> bytes:
    length = str(environ.get("CONTENT_LENGTH") or "")
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    if length.isdigit() and int(length) > MAX_BODY:
        raise ProxyError(413, f"the request body is larger than {MAX_BODY} bytes")
    if not chunked and not (length.isdigit() and int(length) > 0):
        return b""
    data = bytes(environ["wsgi.input"].read(MAX_BODY + 1))
    if len(data) > MAX_BODY:
        raise ProxyError(413, f"the request body is larger than {MAX_BODY} bytes")
    return data


def _stream(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> Iterator[bytes]:
    sent = 0
    try:
        while sent < MAX_RESPONSE:
            chunk = resp.read1(65536)
            if not chunk:
                return
            sent += len(chunk)
            yield chunk
    except (OSError, http.client.HTTPException):
        return
    finally:
        resp.close()
        with contextlib.suppress(OSError):
            conn.close()
