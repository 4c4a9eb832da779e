"""The agent's `/podProxy/…` on its own: a real HTTP server on loopback stands in for the pod.

Only pods the agent knows on its board are reachable, at the IP its own status
holds; the path, query, method, body and headers go along; the pod's answers
pass unchanged (its 404 too) and stream; the agent's own failures are marked.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agent import podproxy

Obj = dict[str, Any]


class PodHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/missing"):
            self.send_error(404, "no such page")
            return
        body = f"{self.command} {self.path} host={self.headers['Host']} x={self.headers.get('X-Test')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[::-1])

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def pod_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PodHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def find_pod(ns: str, name: str) -> Obj | None:
    pods: dict[tuple[str, str], Obj] = {("default", "web"): {"status": {"podIP": "127.0.0.1"}},
                                        ("default", "new"): {"status": {}}}
    return pods.get((ns, name))


def call(path: str, method: str = "GET", body: bytes = b"", query: str = "",
         headers: dict[str, str] | None = None) -> tuple[str, dict[str, str], bytes]:
    environ: Obj = {"REQUEST_METHOD": method, "PATH_INFO": path, "RAW_URI": path + (f"?{query}" if query else ""),
                    "QUERY_STRING": query, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    for k, v in (headers or {}).items():
        environ["HTTP_" + k.upper().replace("-", "_")] = v
    got: dict[str, Any] = {}

    def start_response(status: str, hdrs: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(hdrs)

    out = b"".join(podproxy.serve(environ, start_response, find_pod))
    return got["status"], got["headers"], out


def test_a_request_reaches_the_pod_with_its_path_query_and_headers(pod_server: int) -> None:
    status, headers, body = call(f"/podProxy/default/web/http/{pod_server}/a/b/", query="x=1&y=2",
                                 headers={"X-Test": "yes", "Authorization": "Bearer no", "Connection": "close"})
    assert status == "200 OK"
    assert body.decode() == f"GET /a/b/?x=1&y=2 host=127.0.0.1:{pod_server} x=yes"
    assert podproxy.ERROR_HEADER not in headers


def test_a_body_goes_there_and_back(pod_server: int) -> None:
    status, _, body = call(f"/podProxy/default/web/http/{pod_server}/", "POST", b"abc" * 1000)
    assert status.startswith("201") and body == (b"abc" * 1000)[::-1]


def test_the_pods_own_404_passes_unmarked(pod_server: int) -> None:
    status, headers, _ = call(f"/podProxy/default/web/http/{pod_server}/missing")
    assert status.startswith("404") and podproxy.ERROR_HEADER not in headers


@pytest.mark.parametrize(("path", "code", "text"), [
    ("/podProxy/default/elsewhere/http/80/", "404", 'pod "elsewhere" in namespace "default" is not on this node'),
    ("/podProxy/default/new/http/80/", "502", 'pod "new" has no IP address yet'),
    ("/podProxy/default/web/ftp/80/", "400", 'unknown scheme "ftp"'),
    ("/podProxy/default/web/http/99999/", "400", 'invalid port "99999"'),
    ("/podProxy/default/web", "404", "not found"),
])
def test_the_agents_own_refusals_are_marked(path: str, code: str, text: str) -> None:
    status, headers, body = call(path)
    assert status.startswith(code) and headers[podproxy.ERROR_HEADER] == "1"
    assert text in body.decode()


def test_a_port_nobody_listens_on_is_a_marked_502() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    status, headers, body = call(f"/podProxy/default/web/http/{port}/")
    assert status.startswith("502") and headers[podproxy.ERROR_HEADER] == "1"
    assert f"dial tcp 127.0.0.1:{port}" in body.decode()


def test_a_body_over_the_limit_is_refused_unread() -> None:
    env: Obj = {"REQUEST_METHOD": "POST", "PATH_INFO": "/podProxy/default/web/http/80/", "QUERY_STRING": "",
                "CONTENT_LENGTH": str(podproxy.MAX_BODY + 1), "wsgi.input": io.BytesIO(b"")}
    got: dict[str, str] = {}
    out = b"".join(podproxy.serve(env, lambda s, h: got.setdefault("s", s), find_pod))
    assert got["s"].startswith("413") and b"larger than" in out


class RawPod:
    """A pod that answers an upgrade with a 101 and then echoes, on a raw socket; it records the request head."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.head = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            self.head, _, rest = data.partition(b"\r\n\r\n")
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                         + rest)
            while chunk := conn.recv(65536):
                conn.sendall(chunk)
            conn.sendall(b"pod says bye")


def test_an_upgrade_is_relayed_to_the_pod_and_back() -> None:
    from core.httpserver import Server

    pod = RawPod()
    server = Server(lambda env, sr: podproxy.serve(env, sr, find_pod), "127.0.0.1", 0, name="agent-under-test")
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(f"GET /podProxy/default/web/http/{pod.port}/ws?x=1 HTTP/1.1\r\nHost: agent\r\n"
                      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
                      "Authorization: Bearer no\r\n\r\nfirst".encode())
            got = b""
            while b"first" not in got:
                got += s.recv(65536)
            assert got.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")  # the pod's head, verbatim
            s.sendall(b" second")
            while b"second" not in got:
                got += s.recv(65536)
            s.shutdown(socket.SHUT_WR)  # plain TCP here: a FIN is the half-close
            while chunk := s.recv(65536):
                got += chunk
        assert got.endswith(b"first second" + b"pod says bye")
        head = pod.head.decode()
        assert head.startswith("GET /ws?x=1 HTTP/1.1\r\n")
        assert "Upgrade: websocket" in head and "Sec-Websocket-Key: k" in head
        assert "Authorization" not in head
    finally:
        server.stop()
