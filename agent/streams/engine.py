"""Hijacked connections to the Docker engine: exec start and container attach with the raw socket in hand.

docker-py's `socket=True` results hide the socket behind its HTTP response
object, whose buffered reader may already hold output that arrived with the
`101`; here the request is written and the answer's head read by hand, so bytes
past the head are returned with the socket and nothing is lost. The socket is
then the stream: 8-byte multiplexed frames without a TTY, raw bytes with one;
`shutdown(SHUT_WR)` is stdin's EOF.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlparse

HEAD_LIMIT = 64 * 1024
STDOUT, STDERR = 1, 2


class EngineError(Exception):
    """The engine refused the hijack or could not be reached."""


def connect(host: str, timeout: float = 10.0) -> socket.socket:
    """A new connection to the engine at `host` (unix:///path, tcp://h:p or http://h:p)."""
    url = urlparse(host)
    if url.scheme in ("unix", "http+unix", ""):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(url.path or host)
        except OSError:
            sock.close()
            raise
        return sock
    if url.scheme in ("tcp", "http"):
        return socket.create_connection((url.hostname or "127.0.0.1", url.port or 2375), timeout=timeout)
    raise EngineError(f"cannot hijack a connection to {host} (scheme {url.scheme})")


@dataclass
class Hijacked:
    sock: socket.socket
    early: bytes  # stream bytes that arrived with the 101's head


def hijack(host: str, path: str, body: dict[str, Any] | None, timeout: float = 10.0) -> Hijacked:
    """POST `path` with `Upgrade: tcp` and return the upgraded connection."""
    sock = connect(host, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        sock.sendall(head + data)
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            if len(buf) > HEAD_LIMIT or time.monotonic() > deadline:
                raise EngineError(f"engine answer to {path} too long or too slow")
            chunk = sock.recv(65536)
            if not chunk:
                raise EngineError(f"engine closed the connection on {path}")
            buf += chunk
        end = buf.index(b"\r\n\r\n") + 4
        status_line = bytes(buf[:buf.index(b"\r\n")]).decode("latin-1")
        parts = status_line.split(" ", 2)
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if code not in (101, 200):
            raise EngineError(f"engine answered {status_line!r} to {path}: {_body_text(bytes(buf[end:]))}")
        sock.settimeout(None)
        return Hijacked(sock, bytes(buf[end:]))
    except BaseException:
        sock.close()
        raise


def _body_text(rest: bytes) -> str:
    text = rest.decode("utf-8", "replace").strip()
    try:
        return str(json.loads(text).get("message", text))
    except (ValueError, AttributeError):
        return text[:200]


def exec_start(host: str, exec_id: str, tty: bool) -> Hijacked:
    return hijack(host, f"/exec/{exec_id}/start", {"Detach": False, "Tty": tty})


def attach(host: str, cid: str, stdin: bool, stdout: bool, stderr: bool) -> Hijacked:
    query = urlencode({"stream": 1, "stdin": int(stdin), "stdout": int(stdout), "stderr": int(stderr)})
    return hijack(host, f"/containers/{cid}/attach?{query}", None)


class Demux:
    """Docker's multiplexed stream (8-byte header: type, 0, 0, 0, big-endian size) split into stdout and stderr."""

    def __init__(self, out: Callable[[int, bytes], None]) -> None:
        self._out = out
        self._buf = bytearray()
        self._kind = 0
        self._left = 0

    def feed(self, data: bytes) -> None:
        self._buf += data
        while self._buf:
            if self._left == 0:
                if len(self._buf) < 8:
                    return
                self._kind, self._left = self._buf[0], struct.unpack_from(">I", self._buf, 4)[0]
                del self._buf[:8]
                continue
            take = bytes(self._buf[:self._left])
            del self._buf[:len(take)]
            self._left -= len(take)
            self._out(STDERR if self._kind == STDERR else STDOUT, take)
