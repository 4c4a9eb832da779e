"""The hardened HTTP server on loopback: framing, keep-alive, TLS identities, and the attacks it must outlast.

Each attack is made for real (raw sockets that never handshake, headers that
trickle, a header block far beyond the limit, more connections than the caps)
while an honest client checks that it is still served within a second.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.httpserver import HIJACK_KEY, SOCKET_KEY, Hijacked, Limits, Server
from master.pki import Pki, ensure_pki, issue_client_cert

Obj = dict[str, Any]


def app(environ: Obj, start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/whoami":
        text = f"{environ.get('SSL_CLIENT_VERIFY')} {environ.get('SSL_CLIENT_S_DN_CN')} " \
               f"{environ.get('SSL_CLIENT_S_DN_O')} {environ.get('SSL_CLIENT_S_DN_O_1')}"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [text.encode()]
    if path == "/stream":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"")  # headers now, as a watch sends them

        def gen() -> Iterator[bytes]:
            yield b"first\n"
            environ["test.release"].wait(5)
            yield b"second\n"
        return gen()
    if path == "/socket":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(isinstance(environ[SOCKET_KEY], socket.socket)).encode()]
    if path == "/boom":
        raise RuntimeError("a bug")
    if path == "/upgrade":  # a protocol switch: echo everything back, upper-cased, until the client half-closes
        taken: Hijacked = environ[HIJACK_KEY]()
        taken.sock.settimeout(5)
        taken.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n")
        if taken.buffered:
            taken.sock.sendall(taken.buffered.upper())
        while data := taken.sock.recv(65536):
            taken.sock.sendall(data.upper())
        taken.sock.sendall(b"BYE")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"never sent"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


class Running:
    def __init__(self, tmp: Path, tls: bool, limits: Limits) -> None:
        self.release = threading.Event()
        self.pki: Pki | None = None
        ctx = None
        if tls:
            self.pki = ensure_pki(tmp / "pki", ["localhost"], ["127.0.0.1"])
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.pki.ca_cert))
            ctx.load_cert_chain(str(self.pki.serving_cert), str(self.pki.serving_key))
            ctx.verify_mode = ssl.CERT_OPTIONAL

        def wrapped(environ: Obj, start_response: Any) -> Iterable[bytes]:
            environ["test.release"] = self.release
            return app(environ, start_response)

        self.server = Server(wrapped, "127.0.0.1", 0, ssl_context=ctx, limits=limits, name="test")
        self.server.start()
        self.port = self.server.port

    def client_context(self, cert: tuple[bytes, bytes] | None = None, tmp: Path | None = None) -> ssl.SSLContext:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if cert is not None and tmp is not None:
            (tmp / "c.crt").write_bytes(cert[0])
            (tmp / "c.key").write_bytes(cert[1])
            ctx.load_cert_chain(str(tmp / "c.crt"), str(tmp / "c.key"))
        return ctx

    def conn(self, timeout: float = 5.0, **kw: Any) -> http.client.HTTPConnection:
        if self.pki is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=kw.get("context") or self.client_context())

    def get_ok(self, within: float = 1.0) -> float:
        """An honest request; how long it took (fails if not answered within `within` s)."""
        start = time.monotonic()
        c = self.conn(timeout=within)
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"ok"
        c.close()
        took = time.monotonic() - start
        assert took < within
        return took


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path, False, Limits(header_timeout=1.0, idle_timeout=2.0, max_per_client=20, max_connections=40))
    yield r
    r.release.set()
    r.server.stop()


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Running]:
    r = Running(tmp_path, True, Limits(handshake_timeout=1.0, header_timeout=1.0, max_per_client=300,
                                       max_connections=600))
    yield r
    r.server.stop()


def test_keep_alive_bodies_and_chunked_uploads(plain: Running) -> None:
    c = plain.conn()
    for size in (0, 5, 200_000):
        c.request("POST", "/echo", body=b"x" * size)
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"x" * size
    c.request("POST", "/echo", body=iter([b"ab", b"cde"]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    assert r.read() == b"abcde"
    assert plain.server.open_connections() == 1  # one connection carried all four
    c.close()


def test_a_stream_sends_its_headers_before_its_first_event(plain: Running) -> None:
    c = plain.conn()
    c.request("GET", "/stream")
    r = c.getresponse()  # returns on headers: the body is still open
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    assert r.readline() == b"first\n"
    plain.release.set()
    assert r.read() == b"second\n"


def test_an_application_error_is_a_500_and_the_server_goes_on(plain: Running) -> None:
    c = plain.conn()
    c.request("GET", "/boom")
    assert c.getresponse().status == 500
    plain.get_ok()


def test_the_application_sees_the_socket(plain: Running) -> None:
    c = plain.conn()
    c.request("GET", "/socket")
    assert c.getresponse().read() == b"True"


def raw(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    return s


@pytest.mark.parametrize("early", [b"", b"hello, "])
def test_an_upgrade_takes_over_the_socket_with_the_bytes_read_past_the_head(plain: Running, early: bytes) -> None:
    """Bytes a client sends right behind its request head were read by the server with the head; the
    application must get them first, then the socket; the server adds nothing of its own after the 101."""
    with socket.create_connection(("127.0.0.1", plain.port), timeout=5) as s:
        s.sendall(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n" + early)
        if not early:
            s.sendall(b"hello, ")
        s.sendall(b"world")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert rest == b"HELLO, WORLDBYE"  # nothing of the server's own (no 200, no chunk) after the stream
    plain.get_ok()


def test_slow_headers_are_cut_at_the_deadline_and_others_are_served(plain: Running) -> None:
    s = raw(plain.port)
    s.sendall(b"GET / HTTP/1.1\r\n")
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 5:
        try:
            s.sendall(b"X-a: b\r\n")  # a header line every 0.1 s: each read is quick, the whole never ends
        except OSError:
            closed = True
            break
        plain.get_ok()
        s.settimeout(0.1)
        try:
            if s.recv(1) == b"":
                closed = True
                break
        except TimeoutError:
            pass
    assert closed and time.monotonic() - start < 3  # header_timeout is 1 s
    s.close()


def test_a_huge_header_block_is_refused_unbuffered(plain: Running) -> None:
    s = raw(plain.port)
    s.sendall(b"GET / HTTP/1.1\r\nX-Big: ")
    sent = 0
    s.settimeout(5)
    with contextlib.suppress(OSError):
        while sent < 8 * 2**20:  # the server stops reading at 1 MiB, answers and closes
            s.sendall(b"a" * 65536)
            sent += 65536
    answer = b""
    with contextlib.suppress(OSError):  # the answer may be lost to the reset of our unread upload
        answer = s.recv(200)
    assert sent < 8 * 2**20
    assert answer.startswith(b"HTTP/1.1 431") or answer == b""
    s.close()
    plain.get_ok()


def test_caps_refuse_new_connections_at_once_and_spare_other_clients(plain: Running) -> None:
    held = [raw(plain.port) for _ in range(20)]  # max_per_client
    deadline = time.monotonic() + 5
    while plain.server.open_connections("127.0.0.1") < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    # Refused at accept: reset (SO_LINGER 0), not the clean close an idle connection gets at its deadline.
    # On a loaded machine the reset can reach the client before its connect() has returned.
    with pytest.raises(ConnectionResetError):
        extra = raw(plain.port)
        extra.settimeout(5)
        extra.recv(1)
    assert plain.server.refused == 1
    other = raw(plain.port, source="127.0.0.2")  # another client is still served
    other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert other.recv(100).startswith(b"HTTP/1.1 200")
    for s in held:
        s.close()


def test_idle_connections_without_a_request_are_closed(plain: Running) -> None:
    s = raw(plain.port)
    s.settimeout(5)
    start = time.monotonic()
    assert s.recv(1) == b""  # closed by the server after header_timeout (1 s)
    assert 0.5 < time.monotonic() - start < 3


def test_client_certificates_become_identities(tls: Running, tmp_path: Path) -> None:
    assert tls.pki is not None
    cert = issue_client_cert(tls.pki, "system:node:pi-1", ["system:nodes", "pikube:boards"])
    c = tls.conn(context=tls.client_context(cert, tmp_path))
    c.request("GET", "/whoami")
    assert c.getresponse().read() == b"SUCCESS system:node:pi-1 system:nodes pikube:boards"
    anon = tls.conn()
    anon.request("GET", "/whoami")
    assert anon.getresponse().read().startswith(b"NONE None")


def test_stalled_handshakes_do_not_delay_anyone(tls: Running) -> None:
    silent = [raw(tls.port) for _ in range(100)]  # never send a ClientHello
    partial = [raw(tls.port) for _ in range(100)]
    for s in partial:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # the start of a ClientHello, then nothing
    for _ in range(5):
        tls.get_ok(within=1.0)
    for s in silent + partial:
        s.close()


def test_a_burst_of_honest_tls_clients_all_complete(tls: Running) -> None:
    results: list[float] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            results.append(tls.get_ok(within=5.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(100)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and len(results) == 100
    assert time.monotonic() - start < 5


def test_a_full_server_keeps_room_for_clients_with_a_cluster_certificate(tmp_path: Path) -> None:
    r = Running(tmp_path, True, Limits(max_connections=10, reserved_for_certified=5, handshake_timeout=5.0,
                                       max_per_client=100))
    try:
        flood = [raw(r.port, source="127.0.0.2") for _ in range(10)]  # silent: they fill the server
        deadline = time.monotonic() + 5
        while r.server.open_connections() < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        anonymous = r.conn(timeout=5)
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            anonymous.request("GET", "/")
            anonymous.getresponse()
        assert r.server.refused == 1  # let into the reserve, then dropped: it showed no certificate
        assert r.pki is not None
        cert = issue_client_cert(r.pki, "system:node:pi-1", ["system:nodes"])
        board = r.conn(timeout=5, context=r.client_context(cert, tmp_path))
        board.request("GET", "/whoami")
        assert board.getresponse().read().startswith(b"SUCCESS system:node:pi-1")
        for s in flood:
            s.close()
    finally:
        r.server.stop()
