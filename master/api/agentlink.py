"""The master's connection to a board's agent (HTTPS on the port its Node reports), for logs, streams and proxying.

The agent's certificate is self-signed; the master trusts it only if its
sha256 is the one the node published in the annotation
`pikube.io/serving-cert-sha256` (only that node may write its Node). The master
authenticates with a client certificate from the cluster CA in
`system:masters`, issued once per master process from `DATA/pki/`; the agent
accepts no other caller.

A board that is off, or an agent that is down, must answer the client within
seconds and name the node: `connect` bounds the TCP connect and the TLS
handshake with `timeout` and turns every failure into a 503 `Status`.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core import errors, wellknown
from core.kubeconfig import load_client_cert
from master.pki import ADMIN_GROUP, issue_client_cert, pki_paths
from master.registry.context import ApiContext

SERVING_CERT_ANNOTATION = wellknown.SERVING_CERT_ANNOTATION
CLIENT_CN = "pikube-apiserver-kubelet-client"

_contexts: dict[str, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


@dataclass(frozen=True)
class AgentEndpoint:
    node: str
    host: str
    port: int
    pin: str  # sha256 of the agent's serving certificate, hex

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def client_context(ctx: ApiContext) -> ssl.SSLContext:
    """A TLS context with the master's own client certificate; the server is checked by pin afterwards."""
    key = str(ctx.settings.data_dir)
    with _contexts_lock:
        found = _contexts.get(key)
        if found is None:
            cert_pem, key_pem = issue_client_cert(pki_paths(ctx.settings.data_dir), CLIENT_CN, [ADMIN_GROUP])
            found = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            found.minimum_version = ssl.TLSVersion.TLSv1_2
            found.check_hostname = False
            found.verify_mode = ssl.CERT_NONE  # the certificate is pinned by hash, see check_pin
            found.set_alpn_protocols(["http/1.1"])
            load_client_cert(found, cert_pem, key_pem)
            _contexts[key] = found
        return found


def endpoint_of(node: dict[str, Any], node_name: str) -> AgentEndpoint:
    """Where a Node's agent listens, as the agent published it; 503 while it has not."""
    status = node.get("status") or {}
    address = next((a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
    port = int(((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0)
    pin = ((node.get("metadata") or {}).get("annotations") or {}).get(SERVING_CERT_ANNOTATION, "")
    if not address or not port or not pin:
        raise errors.ServiceUnavailable(message=f'node "{node_name}" has not published its agent endpoint yet')
    return AgentEndpoint(node_name, str(address), port, str(pin))


def node_endpoint(ctx: ApiContext, node_name: str, for_what: str) -> AgentEndpoint:
    """The agent endpoint of a registered node; 503 naming the node otherwise."""
    node = ctx.store.get(f"/core/nodes/{node_name}")
    if node is None:
        raise errors.ServiceUnavailable(message=f'node "{node_name}" {for_what} is not registered')
    return endpoint_of(node, node_name)


def check_pin(sock: ssl.SSLSocket, ep: AgentEndpoint) -> None:
    der = sock.getpeercert(binary_form=True) or b""
    if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), ep.pin.lower()):
        raise errors.ServiceUnavailable(message=f"the agent at {ep.where} does not hold the certificate node "
                                                f'"{ep.node}" published; refusing to talk to it')


def connect(ctx: ApiContext, ep: AgentEndpoint, timeout: float) -> ssl.SSLSocket:
    """A TLS connection to the agent whose certificate is the pinned one, made within `timeout` seconds."""
    try:
        raw = socket.create_connection((ep.host, ep.port), timeout=timeout)
    except OSError as exc:
        raise errors.ServiceUnavailable(message=f'cannot reach the agent of node "{ep.node}" at {ep.where}: '
                                                f"{exc}") from exc
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(timeout)
        tls = client_context(ctx).wrap_socket(raw, server_hostname=None)
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        raise errors.ServiceUnavailable(message=f'cannot reach the agent of node "{ep.node}" at {ep.where}: '
                                                f"TLS handshake failed: {exc}") from exc
    try:
        check_pin(tls, ep)
    except errors.ApiError:
        tls.close()
        raise
    return tls


MAX_HEAD = 64 * 1024  # an agent's response head


@dataclass(frozen=True)
class Head:
    """A response head as the agent sent it: the raw bytes (relayed verbatim after a 101) and their parse."""

    raw: bytes
    code: int
    reason: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def send_request(sock: ssl.SSLSocket, method: str, target: str, ep: AgentEndpoint,
                 headers: list[tuple[str, str]], body: bytes = b"") -> None:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {ep.where}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def read_head(sock: ssl.SSLSocket, ep: AgentEndpoint, timeout: float) -> tuple[Head, bytes]:
    """The agent's response head within `timeout` seconds, and the bytes already read behind it."""
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or len(buf) > MAX_HEAD:
            raise errors.ServiceUnavailable(message=f'the agent of node "{ep.node}" at {ep.where} did not answer '
                                                    f"within {timeout:.0f}s")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError) as exc:
            raise errors.ServiceUnavailable(message=f'the agent of node "{ep.node}" at {ep.where} failed: '
                                                    f"{exc}") from exc
        if not data:
            raise errors.ServiceUnavailable(message=f'the agent of node "{ep.node}" at {ep.where} closed the '
                                                    "connection without an answer")
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    raw, rest = bytes(buf[:end]), bytes(buf[end:])
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise errors.ServiceUnavailable(message=f'the agent of node "{ep.node}" answered something other than '
                                                f"HTTP: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return Head(raw, int(parts[1]), parts[2] if len(parts) > 2 else "", headers), rest


class _Stream:
    """Reads from the agent's socket after a head, each receive bounded by `timeout` seconds."""

    def __init__(self, sock: ssl.SSLSocket, first: bytes, timeout: float) -> None:
        self.sock, self.buf, self.timeout = sock, bytearray(first), timeout

    def fill(self) -> bool:
        self.sock.settimeout(self.timeout)
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def take(self, n: int) -> bytes:
        if not self.buf and not self.fill():
            raise ConnectionError("the agent closed the connection in the middle of a body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > 4096 or not self.fill():
                raise ConnectionError("a bad chunk in the agent's body")
        end = self.buf.index(b"\r\n")
        out = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return out


def body_chunks(sock: ssl.SSLSocket, head: Head, first: bytes, timeout: float,
                method: str = "GET") -> Iterator[bytes]:
    """The body behind `head` as it arrives (Content-Length, chunked, or up to the close), `timeout` seconds at
    most between two receives. Raises OSError (a timeout too) or ConnectionError on a broken body."""
    if method == "HEAD" or head.code in (204, 304) or 100 <= head.code < 200:
        return
    s = _Stream(sock, first, timeout)
    if (head.get("Transfer-Encoding") or "").lower() == "chunked":
        while True:
            size_text = s.line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ConnectionError("a bad chunk size in the agent's body") from None
            if size == 0:
                while s.line():
                    pass  # trailers
                return
            while size:
                data = s.take(size)
                size -= len(data)
                yield data
            s.line()
    length = head.get("Content-Length")
    if length is not None and length.isdigit():
        left = int(length)
        while left:
            data = s.take(min(left, 65536))
            left -= len(data)
            yield data
        return
    while s.buf or s.fill():
        data = bytes(s.buf)
        s.buf.clear()
        yield data


def read_body(sock: ssl.SSLSocket, head: Head, first: bytes, timeout: float, limit: int) -> bytes:
    """A whole (small) body, cut at `limit` bytes; what a broken body delivered is returned as it is."""
    out = bytearray()
    try:
        for chunk in body_chunks(sock, head, first, timeout):
            out += chunk
            if len(out) >= limit:
                break
    except (OSError, ConnectionError):
        pass
    return bytes(out[:limit])


def call(ctx: ApiContext, node_name: str, method: str, target: str, timeout: float = 10.0) -> tuple[int, str]:
    """One small request to a node's agent (no body sent, a short one read back): its status code and text.

    For the master's own errands on a board (removing a released local-path volume); a 503 `Status` when the
    agent cannot be reached or does not answer in time."""
    ep = node_endpoint(ctx, node_name, "holding the volume")
    sock = connect(ctx, ep, timeout)
    try:
        send_request(sock, method, target, ep, [("Connection", "close")])
        head, rest = read_head(sock, ep, timeout)
        body = bytearray(rest)
        length = int(head.get("Content-Length") or 0)
        deadline = time.monotonic() + timeout
        while len(body) < min(length, 64 * 1024) and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except (OSError, ssl.SSLError):
                break
            if not data:
                break
            body += data
        return head.code, body.decode("utf-8", "replace").strip()
    finally:
        sock.close()
