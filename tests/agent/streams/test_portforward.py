"""port-forward and attach on the agent's endpoint, over TLS, into a real pod: SPDY, SPDY in WebSocket, v4 channels.

The pod's web server listens on 127.0.0.1 only, so a forward that works proves the
connection is made inside the pod's network namespace, as the kubelet's.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from typing import Any

import pytest

from core.streams import channels, spdy
from tests.agent.streams.client import SpdyClient, request, spdy_headers, ws_headers
from tests.agent.streams.conftest import NS, POD, Agent

pytestmark = pytest.mark.integration
BIG = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(agent: Agent, docker_client: Any) -> str:
    """A 50 MB random file the pod serves at /big; its sha256 as the pod computes it."""
    app = docker_client.containers.get(agent.app_id)
    code, out = app.exec_run(["sh", "-c", f"head -c {BIG} /dev/urandom > /var/www/big && sha256sum /var/www/big"])
    assert code == 0, out
    return str(out.split()[0].decode())


def _http_body(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), head[:100]
    return body


def _spdy_get(c: SpdyClient, path: str, request_id: str = "0", port: str = "8080") -> tuple[bytes, bytes]:
    err = c.open({"streamtype": "error", "port": port, "requestid": request_id})
    c.session.send_data(err, b"", fin=True)
    data = c.open({"streamtype": "data", "port": port, "requestid": request_id})
    c.session.send_data(data, f"GET {path} HTTP/1.0\r\n\r\n".encode())
    c.flush()
    got = c.collect({data: "data", err: "error"}, {data}, timeout=120)
    return got["data"], got["error"]


@pytest.mark.parametrize("tunnel", [False, True], ids=["spdy", "websocket-tunnel"])
def test_spdy_port_forward_http_and_50mb(agent: Agent, big_file: str, tunnel: bool) -> None:
    if tunnel:
        ans = request(agent.port, agent.admin, "GET", f"/portforward/{NS}/{POD}",
                      ws_headers(channels.PORTFORWARD_TUNNEL))
        assert ans.code == 101 and ans.headers["sec-websocket-protocol"] == channels.PORTFORWARD_TUNNEL
    else:
        ans = request(agent.port, agent.admin, "POST", f"/portforward/{NS}/{POD}", spdy_headers("portforward.k8s.io"))
        assert ans.code == 101 and ans.headers["x-stream-protocol-version"] == "portforward.k8s.io"
    c = SpdyClient(ans, tunnel=tunnel)
    page, err = _spdy_get(c, "/index.html", "0")
    assert _http_body(page) == b"pikube busybox\n" and err == b""
    start = time.monotonic()
    body, err = _spdy_get(c, "/big", "1")
    took = time.monotonic() - start
    body = _http_body(body)
    assert len(body) == BIG and hashlib.sha256(body).hexdigest() == big_file, (len(body), err)
    print(f"50 MB over {'tunnel' if tunnel else 'spdy'} in {took:.2f} s")
    # a port nobody listens on: the error stream says so, the session stays usable
    _, err = _spdy_get(c, "/", "2", port="8081")
    assert b"8081" in err and b"refused" in err.lower(), err
    page, _ = _spdy_get(c, "/index.html", "3")
    assert _http_body(page) == b"pikube busybox\n"
    c.sock.close()


def test_channel_port_forward_http_and_50mb(agent: Agent, big_file: str) -> None:
    """The Python client's variant: ?ports=, v4 channels, the first message per channel the port."""
    for path, want in (("/index.html", None), ("/big", big_file)):
        ans = request(agent.port, agent.admin, "GET", f"/portforward/{NS}/{POD}?ports=8080",
                      ws_headers("v5.channel.k8s.io,v4.channel.k8s.io"))
        assert ans.code == 101 and ans.headers["sec-websocket-protocol"] == channels.V4
        assert ans.sock is not None
        conn = channels.ChannelConnection(channels.V4, client=True)
        conn.send(0, f"GET {path} HTTP/1.0\r\n\r\n".encode())
        ans.sock.sendall(conn.data_to_send())
        firsts: dict[int, bytes] = {}
        data = bytearray()
        closed = None
        pending = ans.early
        while closed is None:
            chunk = pending or ans.sock.recv(1 << 20)
            pending = b""
            if not chunk:
                break
            for ev in conn.receive(chunk):
                if isinstance(ev, channels.ChannelData):
                    if ev.channel not in firsts:
                        firsts[ev.channel] = ev.data
                    elif ev.channel == 0:
                        data += ev.data
                    else:
                        raise AssertionError(f"error channel: {ev.data!r}")
                elif isinstance(ev, channels.Closed):
                    closed = ev.code
            out = conn.data_to_send()
            if out:
                ans.sock.sendall(out)
        ans.sock.close()
        assert firsts == {0: struct.pack("<H", 8080), 1: struct.pack("<H", 8080)}
        body = _http_body(bytes(data))
        if want is None:
            assert body == b"pikube busybox\n"
        else:
            assert len(body) == BIG and hashlib.sha256(body).hexdigest() == want
        assert closed == 1000


def test_port_forward_errors(agent: Agent) -> None:
    ans = request(agent.port, agent.admin, "GET", f"/portforward/{NS}/{POD}?ports=http",
                  ws_headers(channels.V4))
    assert ans.code == 400 and "http" in ans.status()["message"]
    ans = request(agent.port, agent.admin, "GET", f"/portforward/{NS}/nosuch", ws_headers(channels.PORTFORWARD_TUNNEL))
    assert ans.code == 404
    ans = request(agent.port, agent.admin, "POST", f"/portforward/{NS}/{POD}", spdy_headers("v4.channel.k8s.io"))
    assert ans.code == 403


def test_attach_websocket_and_spdy(agent: Agent) -> None:
    q = "container=echo&stdin=true&stdout=true&stderr=true"
    ans = request(agent.port, agent.admin, "GET", f"/attach/{NS}/{POD}/echo?{q}", ws_headers(channels.V5))
    assert ans.code == 101 and ans.sock is not None
    conn = channels.ChannelConnection(channels.V5, client=True)
    conn.send(channels.STDIN, b"hello attach\n")
    ans.sock.sendall(conn.data_to_send())
    got = b""
    pending = ans.early
    deadline = time.monotonic() + 10
    while b"hello attach\n" not in got and time.monotonic() < deadline:
        for ev in conn.receive(pending or ans.sock.recv(65536)):
            if isinstance(ev, channels.ChannelData) and ev.channel == channels.STDOUT:
                got += ev.data
        pending = b""
    assert got == b"hello attach\n"
    ans.sock.close()

    ans = request(agent.port, agent.admin, "POST", f"/attach/{NS}/{POD}/echo?{q}", spdy_headers("v4.channel.k8s.io"))
    assert ans.code == 101
    c = SpdyClient(ans)
    c.open({"streamtype": "error"})
    stdin = c.open({"streamtype": "stdin"})
    out = c.open({"streamtype": "stdout"})
    c.open({"streamtype": "stderr"})
    c.session.send_data(stdin, b"again\n")
    c.flush()
    got = b""
    deadline = time.monotonic() + 10
    while b"again\n" not in got and time.monotonic() < deadline and c.pump(5):
        got = b"".join(f.data for f in c.frames if isinstance(f, spdy.Data) and f.stream_id == out)
    assert got == b"again\n"
    c.sock.close()


def test_attach_to_a_container_without_stdin_is_refused_after_the_upgrade(agent: Agent) -> None:
    ans = request(agent.port, agent.admin, "GET", f"/attach/{NS}/{POD}/app?stdin=true&stdout=true",
                  ws_headers(channels.V5))
    assert ans.code == 101 and ans.sock is not None
    conn = channels.ChannelConnection(channels.V5, client=True)
    status = b""
    data = ans.early or ans.sock.recv(65536)
    while data:
        for ev in conn.receive(data):
            if isinstance(ev, channels.ChannelData) and ev.channel == channels.ERROR:
                status += ev.data
        data = ans.sock.recv(65536)
    assert "stdin" in json.loads(status)["message"]


def test_connections_per_session_are_capped_and_old_clients_pair_by_stream_id(agent: Agent,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.streams import portforward

    monkeypatch.setattr(portforward, "MAX_CONNECTIONS", 2)
    ans = request(agent.port, agent.admin, "POST", f"/portforward/{NS}/{POD}", spdy_headers("portforward.k8s.io"))
    assert ans.code == 101
    c = SpdyClient(ans)
    for rid in ("a", "b"):  # two idle connections: the pod's httpd waits for their requests
        c.open({"streamtype": "error", "port": "8080", "requestid": rid})
        c.open({"streamtype": "data", "port": "8080", "requestid": rid})
    err = c.open({"streamtype": "error", "port": "8080", "requestid": "c"})
    data = c.open({"streamtype": "data", "port": "8080", "requestid": "c"})
    got = c.collect({err: "error", data: "data"}, {err, data})
    assert b"too many connections" in got["error"] and got["data"] == b""
    c.sock.close()
    # a client without request ids: the data stream (id N + 2) belongs to the error stream (id N)
    monkeypatch.setattr(portforward, "MAX_CONNECTIONS", 128)
    ans = request(agent.port, agent.admin, "POST", f"/portforward/{NS}/{POD}", spdy_headers("portforward.k8s.io"))
    c = SpdyClient(ans)
    err = c.open({"streamtype": "error", "port": "8081"})  # nothing listens there: the error names the port
    data = c.open({"streamtype": "data", "port": "8081"})
    assert data == err + 2
    got = c.collect({err: "error", data: "data"}, {err, data})
    assert b"8081" in got["error"]
    c.sock.close()
