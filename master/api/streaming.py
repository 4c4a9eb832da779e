"""WSGI glue for streamed responses (watches, followed logs): headers at once, and an end when the client leaves.

WSGI servers hold headers back until the first body bytes; a watch may have no
event for minutes, and clients wait for headers with a timeout. Responses the
API marks as streams (`STREAM_HEADER`) get their headers flushed through WSGI's
`write` callable.

WSGI also gives an application no sign that its client hung up: a stream that
sends nothing would hold its connection's thread (and its store watcher, or its
connection to an agent) until it next wrote and failed, which on a quiet
cluster may be never. So the server looks at the connection itself, as Go's
net/http does for the real API server: `core.httpserver` hands the application
the accepted socket (`environ[SOCKET_KEY]`), and `client_gone` asks the kernel,
without reading or writing a byte, whether the peer has closed its side (FIN,
also the one after a TLS close_notify), reset the connection, or died
(TCP keepalive, which streams turn on, ends in an error on the socket).
Stream bodies yield `b""` about every `TICK` seconds while they have nothing to
send; `serve_streams` checks the client before every chunk, empty or not, and
ends the response (closing the body, so it releases what it holds) when the
client is gone, noting it in `environ[CLIENT_LEFT_KEY]` so the server writes
nothing more and closes the connection. Empty chunks never reach the wire: a zero-length chunk would
end a chunked response, and no client has to tolerate anything between events.
See "Streams and clients that leave" in docs/api.md.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from core.httpserver import CLIENT_LEFT_KEY, SOCKET_KEY

STREAM_HEADER = "X-Pikube-Stream"
TICK = 1.0  # how often a stream with nothing to send looks at its client
# A client that vanished without closing (a board lost power, a cable pulled) is found by TCP keepalive:
# probes after KEEPALIVE_IDLE quiet seconds, every KEEPALIVE_INTERVAL, given up after KEEPALIVE_COUNT.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 30, 10, 3
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_HUNG_UP = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL


def client_gone(environ: dict[str, Any]) -> Callable[[], bool]:
    """A cheap check (one poll(2), never blocking) of whether this request's client has left.

    Without a socket in `environ` (another WSGI server, Flask's test client) it always answers False.
    """
    sock = environ.get(SOCKET_KEY)
    if not isinstance(sock, socket.socket):
        return lambda: False
    poller = select.poll()
    # POLLRDHUP, not POLLIN: bytes from the client (a TLS record) are not a hang-up, and a socket with
    # unread bytes would look readable forever. HUP, ERR and NVAL are always reported.
    poller.register(sock.fileno(), select.POLLRDHUP)

    def gone() -> bool:
        if sock.fileno() < 0:
            return True
        try:
            return any(mask & _HUNG_UP for _, mask in poller.poll(0))
        except OSError:
            return True

    return gone


def keep_alive(environ: dict[str, Any]) -> None:
    """Turn on TCP keepalive for this request's connection, so a peer that vanished ends in a socket error."""
    sock = environ.get(SOCKET_KEY)
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
    except OSError:  # the connection is already gone; client_gone will say so
        pass


def serve_streams(app: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state: dict[str, Any] = {}

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            stream = any(k == STREAM_HEADER for k, _ in headers)
            write = start_response(status, [(k, v) for k, v in headers if k != STREAM_HEADER], exc_info)
            if stream:
                state["write"] = write
            return write

        result = app(environ, sr)
        write = state.get("write")
        if write is None:
            return result
        keep_alive(environ)
        write(b"")
        return _WhileClientStays(result, client_gone(environ), environ)

    return wrapped


class _WhileClientStays:
    """`body` without its empty chunks, ended as soon as the client is gone; `close` closes `body`.

    A class rather than a generator so that `close` reaches `body` even if the server never iterates.
    Whether the client left (also when `body` ended on its own because of that, as a followed log does)
    is noted in `environ[CLIENT_LEFT_KEY]`.
    """

    def __init__(self, body: Iterable[bytes], gone: Callable[[], bool], environ: dict[str, Any]) -> None:
        self._body = body
        self._gone = gone
        self._environ = environ

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            if self._gone():
                self._environ[CLIENT_LEFT_KEY] = True
                return
            if chunk:
                yield chunk
        if self._gone():
            self._environ[CLIENT_LEFT_KEY] = True

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
