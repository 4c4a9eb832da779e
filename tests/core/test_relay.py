"""The relay loop and the TLS half-close on their own: two real TLS connections on loopback, no master around.

The master's relay sits between kubectl and an agent; here one TLS pair plays
kubectl and the master's accepted end, another the master's connection to the
agent, and the test plays both outer ends.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import relay
from core import tlsclose as tls
from master.pki import ensure_pki

Pair = tuple[ssl.SSLSocket, ssl.SSLSocket]


@pytest.fixture(scope="module")
def contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    pki = ensure_pki(tmp_path_factory.mktemp("relay") / "pki", ["localhost"], ["127.0.0.1"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


def tls_pair(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> Pair:
    """(client end, server end) of one TLS connection on loopback."""
    server_ctx, client_ctx = contexts
    with socket.create_server(("127.0.0.1", 0)) as listener:
        raw_client = socket.create_connection(listener.getsockname())
        raw_server, _ = listener.accept()
    done: dict[str, ssl.SSLSocket] = {}
    t = threading.Thread(target=lambda: done.setdefault("s", server_ctx.wrap_socket(raw_server, server_side=True)))
    t.start()
    client = client_ctx.wrap_socket(raw_client)
    t.join(10)
    for s in (client, done["s"]):
        s.settimeout(10)
    return client, done["s"]


class Relayed:
    """kubectl ⇄ [master: relay] ⇄ agent, with the relay on a thread of its own."""

    def __init__(self, contexts: tuple[ssl.SSLContext, ssl.SSLContext], idle: float = 30.0,
                 client_first: bytes = b"", agent_first: bytes = b"") -> None:
        self.client, accepted = tls_pair(contexts)
        upstream, self.agent = tls_pair(contexts)
        self.ending: list[relay.Ending] = []
        self.thread = threading.Thread(target=lambda: self.ending.append(
            relay.relay(accepted, client_first, upstream, agent_first, idle)), daemon=True)
        self.thread.start()
        self._ends = (accepted, upstream)

    def wait(self, within: float) -> relay.Ending:
        self.thread.join(within)
        assert not self.thread.is_alive(), f"the relay is still running after {within}s"
        for s in self._ends:
            s.close()
        return self.ending[0]


def read_all(sock: ssl.SSLSocket) -> bytes:
    out = b""
    try:
        while data := sock.recv(65536):
            out += data
    except ssl.SSLZeroReturnError:
        pass
    return out


def read_n(sock: ssl.SSLSocket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = sock.recv(65536)
        assert data, f"end of stream after {len(out)} of {n} bytes"
        out += data
    return out


@pytest.fixture
def relayed(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[Relayed]:
    r = Relayed(contexts, client_first=b"early:", agent_first=b"head-tail:")
    yield r
    for s in (r.client, r.agent):
        s.close()


def pump(sock: ssl.SSLSocket, payload: bytes, expect: int) -> bytes:
    """Send `payload` and receive `expect` bytes at the same time, in one thread (an SSLSocket must not be
    read and written by two threads at once): poll for both, act on whichever is ready."""
    got = bytearray()
    sent = 0
    while sent < len(payload) or len(got) < expect:
        if sock.pending():
            got += sock.recv(65536)
            continue
        want_write = [sock] if sent < len(payload) else []
        readable, writable, _ = select.select([sock] if len(got) < expect else [], want_write, [], 10)
        assert readable or writable, f"stuck: sent {sent}/{len(payload)}, got {len(got)}/{expect}"
        if readable:
            data = sock.recv(65536)
            assert data, f"end of stream after {len(got)} of {expect} bytes"
            got += data
        if writable:
            sent += sock.send(payload[sent:sent + 16384])
    return bytes(got)


def test_bytes_go_both_ways_at_once_with_the_bytes_read_before(relayed: Relayed) -> None:
    up = bytes(range(256)) * 8192  # 2 MiB each way, sent at the same time: neither direction waits for the other
    down = bytes(reversed(range(256))) * 8192
    got_down: list[bytes] = []
    t = threading.Thread(target=lambda: got_down.append(pump(relayed.client, up, len(down) + 10)))
    t.start()
    assert pump(relayed.agent, down, len(up) + 6) == b"early:" + up
    t.join(20)
    assert got_down == [b"head-tail:" + down]


def test_a_half_close_goes_through_and_the_answer_after_it_arrives(contexts: tuple[ssl.SSLContext,
                                                                                      ssl.SSLContext]) -> None:
    """The agent answers the client's end of input at once; 30 rounds, since losing that answer was a race."""
    for _ in range(30):
        r = Relayed(contexts)
        r.client.sendall(b"input")
        assert read_n(r.agent, 5) == b"input"
        relay.half_close(r.client)
        assert read_all(r.agent) == b""  # the end of the client's input reaches the agent ...
        r.agent.sendall(b"exit code 0")  # ... which still answers
        relay.half_close(r.agent)
        assert read_all(r.client) == b"exit code 0"
        assert r.wait(2) is relay.Ending.CLOSED
        r.client.close()
        r.agent.close()


def test_a_reset_ends_the_stream_within_a_tick(relayed: Relayed) -> None:
    relayed.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    relayed.client.close()
    start = time.monotonic()
    relayed.agent.sendall(b"x")  # the next write towards the gone client fails, or the RST is read
    assert relayed.wait(2) is relay.Ending.BROKEN
    assert time.monotonic() - start < 1.5


def test_a_quiet_stream_ends_at_the_idle_timeout(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    r = Relayed(contexts, idle=1.0)
    start = time.monotonic()
    for _ in range(3):  # traffic keeps it alive ...
        r.client.sendall(b"ping")
        assert read_n(r.agent, 4) == b"ping"
        time.sleep(0.5)  # the pace of the traffic (half the idle timeout) is what is tested, not a wait
    assert r.wait(3) is relay.Ending.IDLE  # ... silence ends it
    assert 2.0 < time.monotonic() - start < 4.0
    r.client.close()
    r.agent.close()


def test_the_close_notify_goes_through_openssl_directly(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    client, server = tls_pair(contexts)
    assert tls._ssl_pointer(client) is not None  # the guarded ctypes path, not the racy fallback
    tls.close_notify(client)
    assert read_all(server) == b""
    server.sendall(b"still writable")
    assert read_all_after(client) == b"still writable"
    client.close()
    server.close()


def read_all_after(sock: ssl.SSLSocket) -> bytes:
    sock.settimeout(1)
    out = b""
    try:
        while data := sock.recv(65536):
            out += data
    except (TimeoutError, ssl.SSLZeroReturnError):
        pass
    return out


def test_no_pointer_for_a_closed_socket(contexts: tuple[ssl.SSLContext, ssl.SSLContext], tmp_path: Path) -> None:
    client, server = tls_pair(contexts)
    client.close()
    assert tls._ssl_pointer(client) is None
    tls.close_notify(client)  # harmless
    server.close()
