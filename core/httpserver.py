"""pikube's HTTP/1.1 WSGI server: every server pikube runs (API, status page, agent) survives the LAN it lives on.

Why not cheroot, which served wave 1: it completes each TLS handshake on the
thread that accepts connections, so one TCP connection that never sends a
ClientHello stalled every other client for its 30 s timeout, and three stalled
the API outright (boards lost their heartbeats, every pod was evicted). Nothing
in it bounds connections per client, the time a client may take to send its
headers (slowloris), or the headers' size before they are buffered.

Here every accepted connection is counted against a total and a per-address cap
(beyond either it is closed at once, so clients already connected keep being
served; past the total, a reserve is kept for clients that present a cluster
certificate in their handshake) and gets a thread of its own, in which — never on the accepting thread —
the TLS handshake must finish within `handshake_timeout`, each request's line and
headers within `header_timeout` (a deadline for the whole head, not per read),
its body within `body_timeout`, and the next request on a kept-alive connection
must start within `idle_timeout`. The request line, the header block and the
number of headers are bounded before anything is buffered beyond them (Go's net/http
allows 1 MiB of headers; so does this). Responses are streamed: a body without a
Content-Length goes out chunked, and an application may send headers at once
through WSGI's `write` (watches do). The application gets the connection's socket
in `environ[SOCKET_KEY]` to notice a client that left, and the client certificate's
subject in the `SSL_CLIENT_*` variables Apache's mod_ssl defined.

Protocol upgrades (exec, attach, port-forward: `101 Switching Protocols`): the
application calls `environ[HIJACK_KEY]()`, which returns a `Hijacked` — the
connection's socket and the bytes the server had already read from it past
what the application consumed of the request (the server reads in 64 KiB
receives, so a client that sends its first frames right behind the request head
has them in there, not in the socket). From then on the socket is the
application's: it writes its own `101` head and whatever follows, the server
writes nothing more on it (whatever the application returns is ignored) and
closes it once the application returns. The request's thread is the stream's
thread.

A thread per connection rather than a selector and a pool: a kept-alive
connection holds a thread while idle, which is what bounds caps exist for, and
in exchange a stuck client can only ever hold its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SOCKET_KEY = "pikube.socket"  # the connection's socket, for `client_gone` and protocol upgrades
HIJACKED_KEY = "pikube.hijacked"  # set once the socket was taken over (by HIJACK_KEY, or by hand before it existed)
HIJACK_KEY = "pikube.hijack"  # a callable: take the connection over for a protocol upgrade (see the docstring)
CLIENT_LEFT_KEY = "pikube.client_left"  # set by an application whose stream ended because its client left
_STATUS_TEXT = {400: "Bad Request", 408: "Request Timeout", 413: "Payload Too Large", 414: "URI Too Long",
                431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
                505: "HTTP Version Not Supported"}


@dataclass(frozen=True)
class Limits:
    """What one client may take from a server; the defaults suit the API server on a 1 GB board."""

    max_connections: int = 1024  # open connections in total
    max_per_client: int = 256  # open connections from one address
    # Beyond max_connections, this many more are let in to finish a TLS handshake, and kept only if the client
    # proved an identity with a certificate of the cluster (boards, the admin): a flood of anonymous connections
    # can then fill the server without locking the cluster's own clients out.
    reserved_for_certified: int = 64
    backlog: int = 1024  # the kernel's queue of connections not yet accepted (a switch reboot reconnects all)
    handshake_timeout: float = 5.0  # the whole TLS handshake
    header_timeout: float = 10.0  # request line and headers, once the request's first byte has arrived
    idle_timeout: float = 120.0  # a kept-alive connection's wait for the next request's first byte
    body_timeout: float = 60.0  # the whole request body
    write_timeout: float = 60.0  # any one send to a client that does not read
    max_request_line: int = 16 * 1024
    max_header_bytes: int = 1 << 20
    max_headers: int = 200
    drain_body: int = 64 * 1024  # an unread request body up to this size is skipped to keep the connection


@dataclass(frozen=True)
class Hijacked:
    """A connection taken over by an application: its socket, and the bytes already read from it that the
    application must treat as the first bytes of the stream (often empty)."""

    sock: socket.socket
    buffered: bytes


class BadRequest(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Timeout(Exception):
    """The client was too slow (or silent) for a deadline."""


class _Closed(Exception):
    """The client closed the connection."""


class _Reader:
    """Buffered reads from a socket, each bounded by an absolute deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Timeout()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise _Timeout() from None
        except ssl.SSLWantReadError:  # a TLS record in pieces: the next round waits for the rest
            return
        if not data:
            raise _Closed()
        self.buf += data

    def wait_first_byte(self, deadline: float) -> None:
        while not self.buf:
            self._fill(deadline)

    def readline(self, limit: int, deadline: float, code: int) -> bytes:
        """One line with its CRLF; `code` (414, 431) when it is longer than `limit`."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                if end + 1 > limit:
                    raise BadRequest(code, "line too long")
                line = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > limit:
                raise BadRequest(code, "line too long")
            self._fill(deadline)

    def read(self, n: int, deadline: float) -> bytes:
        """Up to `n` bytes (fewer only at end of stream): whatever is buffered, else one receive."""
        if not self.buf:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


class _Body:
    """`wsgi.input`: the request body, as Content-Length or chunked framing gives it, within a deadline."""

    def __init__(self, reader: _Reader, length: int | None, chunked: bool, deadline: float,
                 on_first_read: Callable[[], None]) -> None:
        self._r = reader
        self._left = length or 0
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not length
        self._deadline = deadline
        self._on_first_read: Callable[[], None] | None = on_first_read
        self.consumed = 0

    @property
    def done(self) -> bool:
        return self._done

    def _start(self) -> None:
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()

    def _next_chunk(self) -> None:
        line = self._r.readline(1024, self._deadline, 400)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(400, "bad chunk size") from None
        if size < 0:
            raise BadRequest(400, "bad chunk size")
        if size == 0:
            while self._r.readline(8192, self._deadline, 431) not in (b"\r\n", b"\n"):
                pass  # trailers are ignored
            self._done = True
        self._chunk_left = size

    def read(self, size: int = -1) -> bytes:
        self._start()
        out = bytearray()
        while not self._done and (size < 0 or len(out) < size):
            want = 65536 if size < 0 else size - len(out)
            if self._chunked:
                if self._chunk_left == 0:
                    self._next_chunk()
                    if self._done:
                        break
                data = self._r.read(min(want, self._chunk_left), self._deadline)
                if not data:
                    raise _Closed()
                self._chunk_left -= len(data)
                if self._chunk_left == 0:
                    self._r.readline(8, self._deadline, 400)  # the CRLF after a chunk
            else:
                data = self._r.read(min(want, self._left), self._deadline)
                if not data:
                    raise _Closed()
                self._left -= len(data)
                self._done = self._left == 0
            out += data
        self.consumed += len(out)
        return bytes(out)

    def readline(self, size: int = -1) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n") and (size < 0 or len(out) < size):
            c = self.read(1)
            if not c:
                break
            out += c
        return bytes(out)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def _cert_environ(sock: ssl.SSLSocket) -> dict[str, str]:
    """mod_ssl's variables for a verified client certificate (the context decides whether one is required)."""
    env = {"HTTPS": "on", "SSL_CLIENT_VERIFY": "NONE"}
    cert = sock.getpeercert()
    if not cert:
        return env
    env["SSL_CLIENT_VERIFY"] = "SUCCESS"
    seen: dict[str, int] = {}
    subject: Any = cert.get("subject", ())
    for rdn in subject:
        for name, value in rdn:
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                     "countryName": "C"}.get(name, name)
            n = seen.get(short, 0)
            seen[short] = n + 1
            env[f"SSL_CLIENT_S_DN_{short}" + (f"_{n}" if n else "")] = str(value)
    return env


class Server:
    """A threaded WSGI server on one address; `start()` returns once it listens."""

    def __init__(self, app: WsgiApp, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                 limits: Limits | None = None, name: str = "http") -> None:
        self.app = app
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.limits = limits or Limits()
        self.name = name
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._per_client: dict[str, int] = {}
        self._open = 0
        self._refused = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._wake_r, self._wake_w = socket.socketpair()  # stop() wakes the accepting thread through it

    # --- lifecycle ---------------------------------------------------------------------------
    def bind(self) -> None:
        """Bind and listen (raises OSError if the address is taken); `port` 0 picks a free one."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            s.bind((self.host, self.port))
            s.listen(self.limits.backlog)
        except OSError:
            s.close()
            raise
        self.port = s.getsockname()[1]
        self._listener = s

    def start(self) -> None:
        if self._listener is None:
            self.bind()
        self._thread = threading.Thread(target=self._accept_loop, name=f"{self.name}-accept", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting and close every open connection (streams end, their threads follow)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    # --- what tests and operators look at ----------------------------------------------------
    def open_connections(self, client: str | None = None) -> int:
        with self._lock:
            return self._open if client is None else self._per_client.get(client, 0)

    @property
    def refused(self) -> int:
        """Connections closed at once because a cap was reached."""
        return self._refused

    # --- accepting ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        poller = select.poll()
        poller.register(listener.fileno(), select.POLLIN)
        poller.register(self._wake_r.fileno(), select.POLLIN)
        while not self._stopping.is_set():
            try:
                ready = {fd for fd, _ in poller.poll()}
                if listener.fileno() not in ready:
                    continue
                conn, addr = listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.01)  # e.g. EMFILE: let connections close before trying again
                continue
            client = str(addr[0])
            lim = self.limits
            reserve = lim.reserved_for_certified if self.ssl_context is not None else 0
            with self._lock:
                overflow = self._open >= lim.max_connections
                over = self._open >= lim.max_connections + reserve or \
                    self._per_client.get(client, 0) >= lim.max_per_client
                if over:
                    self._refused += 1
                else:
                    self._open += 1
                    self._per_client[client] = self._per_client.get(client, 0) + 1
                    self._sockets.add(conn)
            if over:
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    conn.close()
                continue
            t = threading.Thread(target=self._serve_connection, args=(conn, addr, overflow), daemon=True,
                                 name=f"{self.name}-conn")
            try:
                t.start()
            except RuntimeError:  # no thread to be had: give the connection up
                self._release(conn, client)

    def _release(self, conn: socket.socket, client: str) -> None:
        with contextlib.suppress(OSError):
            conn.close()
        with self._lock:
            self._sockets.discard(conn)
            self._open -= 1
            left = self._per_client.get(client, 1) - 1
            if left:
                self._per_client[client] = left
            else:
                self._per_client.pop(client, None)

    # --- one connection ----------------------------------------------------------------------
    def _serve_connection(self, raw: socket.socket, addr: Any, overflow: bool = False) -> None:
        client = str(addr[0])
        sock: socket.socket = raw
        try:
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls_env: dict[str, str] = {}
            if self.ssl_context is not None:
                tls = self._handshake(raw)
                if tls is None:
                    return
                sock = tls
                if overflow and not tls.getpeercert():
                    with self._lock:
                        self._refused += 1
                    return  # a reserved place, and no certificate to earn it
                with self._lock:
                    self._sockets.discard(raw)
                    self._sockets.add(sock)
                tls_env = _cert_environ(tls)
            self._requests(sock, addr, tls_env)
        except Exception:  # never let one connection's trouble reach the server
            log.debug("%s: connection from %s ended with an error", self.name, client, exc_info=True)
        finally:
            with self._lock:
                self._sockets.discard(sock)
                self._sockets.add(raw)
            if sock is not raw:
                with contextlib.suppress(OSError):
                    sock.close()
            self._release(raw, client)

    def _handshake(self, raw: socket.socket) -> ssl.SSLSocket | None:
        """The TLS handshake, done within `handshake_timeout` as a whole however the client trickles."""
        assert self.ssl_context is not None
        deadline = time.monotonic() + self.limits.handshake_timeout
        try:
            raw.setblocking(False)
            tls = self.ssl_context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            return None
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    events = select.POLLIN
                except ssl.SSLWantWriteError:
                    events = select.POLLOUT
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                p = select.poll()
                p.register(tls.fileno(), events)
                if not p.poll(left * 1000):
                    return None
        except (OSError, ssl.SSLError, ValueError):
            return None
        tls.setblocking(True)
        return tls

    def _requests(self, sock: socket.socket, addr: Any, tls_env: dict[str, str]) -> None:
        reader = _Reader(sock)
        lim = self.limits
        wait = lim.header_timeout  # a new connection must start its first request promptly
        while not self._stopping.is_set():
            try:
                reader.wait_first_byte(time.monotonic() + wait)
            except (_Timeout, _Closed, OSError):
                return
            try:
                keep = self._one_request(sock, reader, addr, tls_env)
            except BadRequest as exc:
                self._send_error(sock, exc.code, str(exc))
                return
            except (_Timeout, _Closed, OSError):
                return
            if not keep:
                return
            wait = lim.idle_timeout

    def _read_head(self, reader: _Reader) -> tuple[str, str, str, list[tuple[str, str]]]:
        lim = self.limits
        deadline = time.monotonic() + lim.header_timeout
        line = reader.readline(lim.max_request_line, deadline, 414)
        while line in (b"\r\n", b"\n"):  # RFC 9112: ignore at least one empty line before a request
            line = reader.readline(lim.max_request_line, deadline, 414)
        parts = line.rstrip(b"\r\n").split(b" ")
        if len(parts) != 3:
            raise BadRequest(400, "malformed request line")
        try:
            method, target, version = (p.decode("ascii") for p in parts)
        except UnicodeDecodeError:
            raise BadRequest(400, "request line is not ASCII") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(505, "only HTTP/1.x is served")
        headers: list[tuple[str, str]] = []
        total = 0
        while True:
            hline = reader.readline(lim.max_header_bytes, deadline, 431)
            total += len(hline)
            if total > lim.max_header_bytes:
                raise BadRequest(431, "request headers too large")
            if hline in (b"\r\n", b"\n"):
                break
            if hline[:1] in (b" ", b"\t"):
                raise BadRequest(400, "obsolete header line folding")
            name, sep, value = hline.partition(b":")
            if not sep or not name or name != name.strip():
                raise BadRequest(400, "malformed header line")
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
            if len(headers) > lim.max_headers:
                raise BadRequest(431, "too many request headers")
        return method, target, version, headers

    def _environ(self, method: str, target: str, version: str, headers: list[tuple[str, str]], addr: Any,
                 sock: socket.socket, tls_env: dict[str, str]) -> dict[str, Any]:
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute form
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        env: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query, "RAW_URI": target, "REQUEST_URI": target, "SERVER_PROTOCOL": version,
            "SERVER_NAME": self.host, "SERVER_PORT": str(self.port),
            "REMOTE_ADDR": str(addr[0]), "REMOTE_PORT": str(addr[1]),
            "wsgi.version": (1, 0), "wsgi.url_scheme": "https" if tls_env else "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, SOCKET_KEY: sock,
        }
        env.update(tls_env)
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = value
                continue
            key = "HTTP_" + key
            env[key] = f"{env[key]}, {value}" if key in env else value
        return env

    def _one_request(self, sock: socket.socket, reader: _Reader, addr: Any, tls_env: dict[str, str]) -> bool:
        """Serve one request; whether the connection may carry another."""
        lim = self.limits
        method, target, version, headers = self._read_head(reader)
        env = self._environ(method, target, version, headers, addr, sock, tls_env)
        lowered = {k.lower(): v for k, v in headers}
        te = lowered.get("transfer-encoding", "").lower()
        chunked = te == "chunked"
        if te and not chunked:
            raise BadRequest(501, "unsupported transfer encoding")
        length: int | None = None
        if "content-length" in lowered:
            if chunked:
                raise BadRequest(400, "both Content-Length and chunked transfer encoding")
            text = lowered["content-length"]
            if not text.isdigit():
                raise BadRequest(400, "bad Content-Length")
            length = int(text)
        if chunked:
            env.pop("CONTENT_LENGTH", None)
        conn_tokens = {t.strip().lower() for t in lowered.get("connection", "").split(",")}
        keep = version == "HTTP/1.1" and "close" not in conn_tokens

        out = _Response(sock, version, method, lim.write_timeout)

        def continue_100() -> None:
            if lowered.get("expect", "").lower() == "100-continue" and not out.started:
                out.send_raw(b"HTTP/1.1 100 Continue\r\n\r\n")

        body = _Body(reader, length, chunked, time.monotonic() + lim.body_timeout, continue_100)
        env["wsgi.input"] = body

        def hijack() -> Hijacked:
            if out.started:
                raise RuntimeError("a response was already started on this connection")
            env[HIJACKED_KEY] = True
            buffered = bytes(reader.buf)
            reader.buf.clear()
            return Hijacked(sock, buffered)

        env[HIJACK_KEY] = hijack
        result: Iterable[bytes] | None = None
        try:
            result = self.app(env, out.start_response)
            for chunk in result:
                if env.get(HIJACKED_KEY):
                    break  # the application owns the socket: what it returns never reaches the wire
                out.write(chunk)
            if env.get(HIJACKED_KEY) or env.get(CLIENT_LEFT_KEY):
                return False  # nothing more goes on the wire: the connection ends here
            out.finish()
        except (_Timeout, _Closed, OSError):
            return False
        except BadRequest:
            raise
        except Exception:
            log.exception("%s: %s %s failed", self.name, method, env["PATH_INFO"])
            if not out.started and not env.get(HIJACKED_KEY):
                out.start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                out.write(b"Internal Server Error\n")
                out.finish()
            return False
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        if env.get(HIJACKED_KEY):
            return False
        if out.close_after or not keep:
            return False
        if not body.done:  # the application left some of the body: skip a little, or give up the connection
            if body.consumed + (length or 0) > lim.drain_body or chunked:
                return False
            try:
                while body.read(65536):
                    pass
            except (_Timeout, _Closed, BadRequest, OSError):
                return False
        return True

    def _send_error(self, sock: socket.socket, code: int, message: str) -> None:
        text = f"{message}\n".encode()
        head = (f"HTTP/1.1 {code} {_STATUS_TEXT.get(code, 'Error')}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n").encode()
        with contextlib.suppress(OSError):
            sock.settimeout(2.0)
            sock.sendall(head + text)


class _Response:
    """WSGI's start_response and write for one request, framing the body as its headers allow."""

    def __init__(self, sock: socket.socket, version: str, method: str, write_timeout: float) -> None:
        self.sock = sock
        self.version = version
        self.method = method
        self.write_timeout = write_timeout
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.started = False  # headers sent
        self.chunked = False
        self.no_body = False
        self.close_after = False
        self.length: int | None = None
        self.sent = 0

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[
            [bytes], None]:
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.write

    def send_raw(self, data: bytes) -> None:
        self.sock.settimeout(self.write_timeout)
        self.sock.sendall(data)

    def _send_head(self) -> None:
        if not self.status:
            raise RuntimeError("the application wrote before start_response")
        code = int(self.status.split(" ", 1)[0])
        names = {k.lower() for k, _ in self.headers}
        for k, v in self.headers:
            lk = k.lower()
            if lk == "content-length":
                self.length = int(v)
            elif lk == "connection" and "close" in v.lower():
                self.close_after = True
        self.no_body = self.method == "HEAD" or code < 200 or code in (204, 304)
        head = [f"HTTP/1.1 {self.status}\r\n"]
        head += [f"{k}: {v}\r\n" for k, v in self.headers]
        if "date" not in names:
            head.append(f"Date: {formatdate(usegmt=True)}\r\n")
        if code == 101:
            pass
        elif self.length is None and not self.no_body:
            if self.version == "HTTP/1.1":
                self.chunked = True
                head.append("Transfer-Encoding: chunked\r\n")
            else:
                self.close_after = True
        if self.close_after and "connection" not in names:
            head.append("Connection: close\r\n")
        head.append("\r\n")
        self.started = True
        self.send_raw("".join(head).encode("latin-1"))

    def write(self, data: bytes) -> None:
        if not self.started:
            self._send_head()
        if not data or self.no_body:
            return
        if self.chunked:
            self.send_raw(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.send_raw(data)
        self.sent += len(data)

    def finish(self) -> None:
        if not self.started:
            self._send_head()
        if self.chunked:
            self.send_raw(b"0\r\n\r\n")
        elif self.length is not None and self.sent < self.length and not self.no_body:
            self.close_after = True  # the application sent less than it announced: the framing is lost
