"""exec / attach / port-forward through a real master over TLS, relayed to a real TLS server standing in for the agent.

The stand-in is pikube's own HTTP server (core.httpserver, as the agent runs
it) with the agent's kind of self-signed certificate, published on a Node as a
board publishes it. It answers the upgrade with a 101 and then echoes, or
refuses with a Status, as the test asks through the command. So these tests
see what the master does — the checks, the request it relays, the bytes both
ways, half-close, the ends of a stream, the caps, the threads — independently of
the protocols the real agent speaks (their end-to-end tests run kubectl
against a dev cluster).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from core.httpserver import HIJACK_KEY, Hijacked, Limits, Server
from core.relay import half_close
from tests.master.conftest import RunningMaster, kubectl, start_master
from tests.master.test_stream_disconnect import held, settled_thread_count, thread_count, wait_for

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
NS = "streams"
NODE = "fake-board"


# --- the stand-in agent --------------------------------------------------------------------------------------


class FakeAgent:
    """An HTTPS server on loopback with a board's self-signed certificate; every request is recorded.

    `command=echo` (or any other): 101, then every byte back as it came; when the master half-closes, `BYE`
    and the end. `command=refuse`: 403 with a Status and `X-Accepted-Stream-Protocol-Versions`.
    `command=quiet`: 101, then nothing until the master leaves.
    """

    def __init__(self, tmp: Path) -> None:
        from agent.credentials import ensure_serving_cert

        cert = ensure_serving_cert(tmp, NODE, ["127.0.0.1"])
        self.pin = cert.sha256
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
        self.requests: list[Obj] = []
        self.streams_open = 0
        self.ended = threading.Event()
        self._lock = threading.Lock()
        self.server = Server(self.app, "127.0.0.1", 0, ssl_context=ctx, name="fake-agent",
                             limits=Limits(max_connections=256, max_per_client=256))
        self.server.start()
        self.port = self.server.port

    def app(self, environ: Obj, start_response: Any) -> Iterable[bytes]:
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        self.requests.append({"method": environ["REQUEST_METHOD"], "target": environ["RAW_URI"],
                              "headers": headers})
        command = (parse_qs(environ["QUERY_STRING"]).get("command") or [""])[0]
        if command == "refuse":
            body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                               "reason": "Forbidden", "message": "the fake agent refuses"}).encode()
            start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                             ("X-Accepted-Stream-Protocol-Versions", "v4.channel.k8s.io"),
                                             ("X-Agent-Secret", "not for the client")])
            return [body]
        taken: Hijacked = environ[HIJACK_KEY]()
        sock = taken.sock
        sock.settimeout(30)
        if command == "ws-hello":
            self._websocket_hello(environ, sock)
            start_response("200 OK", [])
            return []
        with self._lock:
            self.streams_open += 1
        try:
            protocol = str(environ.get("HTTP_X_STREAM_PROTOCOL_VERSION") or "").split(",")[0].strip()
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                         b"X-Stream-Protocol-Version: " + protocol.encode() + b"\r\n\r\n" + b"hello")
            if taken.buffered:
                sock.sendall(taken.buffered)
            while data := sock.recv(65536):
                if command != "quiet":
                    sock.sendall(data)
            if command != "quiet":
                sock.sendall(b"BYE")
        except OSError:
            pass
        finally:
            with self._lock:
                self.streams_open -= 1
            self.ended.set()
        start_response("200 OK", [])
        return []

    @staticmethod
    def _websocket_hello(environ: Obj, sock: socket.socket) -> None:
        """A WebSocket exec as the channel protocol has it: stdout, then the Success status, then close 1000."""
        key = str(environ.get("HTTP_SEC_WEBSOCKET_KEY") or "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        protocol = str(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL") or "").split(",")[0].strip()
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: " + protocol.encode() +
                     b"\r\n\r\n")

        def frame(opcode: int, payload: bytes) -> bytes:  # server frames are unmasked; payloads here are short
            return bytes([0x80 | opcode, len(payload)]) + payload

        sock.sendall(frame(2, b"\x01hello from the agent\n") + frame(2, b'\x03{"status":"Success"}') +
                     frame(8, (1000).to_bytes(2, "big")))
        with contextlib.suppress(OSError):
            while sock.recv(65536):  # the client's close frame, then its end
                pass

    def stop(self) -> None:
        self.server.stop()


# --- a raw client --------------------------------------------------------------------------------------------


def client_context(master: RunningMaster, cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(master.ca))
    if cert is None:
        master.session()  # writes the admin's certificate under test-client/
        ctx.load_cert_chain(str(master.data_dir / "test-client" / "c.pem"),
                            str(master.data_dir / "test-client" / "k.pem"))
    elif cert != (b"", b""):
        d = master.data_dir / f"cert-{abs(hash(cert[0]))}"
        d.mkdir(exist_ok=True)
        (d / "c.pem").write_bytes(cert[0])
        (d / "k.pem").write_bytes(cert[1])
        ctx.load_cert_chain(str(d / "c.pem"), str(d / "k.pem"))
    return ctx


class Upgrade:
    """One upgrade request on its own TLS connection to the master, read as raw bytes."""

    def __init__(self, master: RunningMaster, path: str, method: str = "POST",
                 headers: list[tuple[str, str]] | None = None, ctx: ssl.SSLContext | None = None,
                 early: bytes = b"") -> None:
        self.sock = (ctx or client_context(master)).wrap_socket(
            socket.create_connection(("127.0.0.1", master.port), timeout=20), server_hostname="127.0.0.1")
        hdrs = headers if headers is not None else spdy_headers()
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{master.port}", *[f"{k}: {v}" for k, v in hdrs]]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + early)
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines_ = head.decode("latin-1").split("\r\n")
        self.code = int(lines_[0].split()[1]) if lines_[0] else 0
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines_[1:])}

    def read_exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                break
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_end(self) -> bytes:
        try:
            while data := self.sock.recv(65536):
                self.buf += data
        except ssl.SSLZeroReturnError:  # the peer's close_notify after ours: the end
            pass
        out, self.buf = self.buf, b""
        return out

    def body(self) -> bytes:
        length = int(self.headers.get("content-length", "0"))
        return self.read_exactly(length)

    def status(self) -> Obj:
        return dict(json.loads(self.body()))

    def half_close(self) -> None:
        half_close(self.sock)  # a TLS close_notify, the connection kept for reading (Go's CloseWrite)

    def close(self) -> None:
        self.sock.close()


def spdy_headers(*versions: str) -> list[tuple[str, str]]:
    return [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
            *[("X-Stream-Protocol-Version", v) for v in versions or ("v4.channel.k8s.io", "v3.channel.k8s.io")]]


def ws_headers(protocol: str = "v5.channel.k8s.io") -> list[tuple[str, str]]:
    return [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Protocol", protocol)]


# --- the cluster the tests share -----------------------------------------------------------------------------


def publish(master: RunningMaster, admin: requests.Session, node: str, port: int, pin: str) -> None:
    base = master.url
    resp = admin.post(f"{base}/api/v1/nodes", json={"metadata": {"name": node}})
    assert resp.status_code in (201, 409), resp.text
    admin.patch(f"{base}/api/v1/nodes/{node}", data=json.dumps(
        {"metadata": {"annotations": {"pikube.io/serving-cert-sha256": pin}}}),
        headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    status = {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
    admin.patch(f"{base}/api/v1/nodes/{node}/status", data=json.dumps(status),
                headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()


def make_pod(master: RunningMaster, admin: requests.Session, name: str, node: str | None = NODE,
             phase: str = "Running", containers: tuple[str, ...] = ("app", "side"),
             annotations: dict[str, str] | None = None) -> None:
    spec: Obj = {"containers": [{"name": c, "image": "pikube/busybox:1"} for c in containers],
                 "tolerations": [{"operator": "Exists"}]}  # the fake board never heartbeats: stay on it anyway
    if node:
        spec["nodeName"] = node
    else:
        spec["schedulerName"] = "nobody"  # no scheduler picks it up: it stays without a node
    pod = {"metadata": {"name": name, "annotations": annotations or {}}, "spec": spec}
    resp = admin.post(f"{master.url}/api/v1/namespaces/{NS}/pods", json=pod)
    assert resp.status_code == 201, resp.text
    status = {"status": {"phase": phase, "podIP": "10.244.9.9"}}
    admin.patch(f"{master.url}/api/v1/namespaces/{NS}/pods/{name}/status", data=json.dumps(status),
                headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()


@pytest.fixture(scope="module")
def agent(master: RunningMaster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAgent]:
    a = FakeAgent(tmp_path_factory.mktemp("fake-agent"))
    admin = master.session()
    publish(master, admin, NODE, a.port, a.pin)
    resp = admin.post(f"{master.url}/api/v1/namespaces", json={"metadata": {"name": NS}})
    assert resp.status_code in (201, 409)
    make_pod(master, admin, "web")
    make_pod(master, admin, "annotated", annotations={"kubectl.kubernetes.io/default-container": "side"})
    make_pod(master, admin, "done", phase="Succeeded")
    make_pod(master, admin, "starting", phase="Pending")
    make_pod(master, admin, "unscheduled", node=None, phase="Pending")
    yield a
    a.stop()


EXEC = f"/api/v1/namespaces/{NS}/pods/web/exec"


# --- routing of upgrade requests -----------------------------------------------------------------------------


def test_a_websocket_handshake_to_a_path_that_does_not_stream_gets_its_normal_answer(
        master: RunningMaster, agent: FakeAgent) -> None:
    """Werkzeug used to turn any `Upgrade: websocket` request into a generic 400 before pikube's view ran."""
    listed = Upgrade(master, f"/api/v1/namespaces/{NS}/configmaps", "GET", ws_headers())
    assert listed.code == 200
    assert json.loads(listed.read_exactly(int(listed.headers.get("content-length", "0")) or 10 ** 6)
                      if "content-length" in listed.headers else b"{}").get("kind") in ("ConfigMapList", None)
    listed.close()
    missing = Upgrade(master, "/api/v1/namespaces/streams/nothings", "GET", ws_headers())
    assert missing.code == 404
    assert missing.status()["kind"] == "Status"
    missing.close()


def test_a_stream_path_without_an_upgrade_is_told_so(master: RunningMaster, agent: FakeAgent) -> None:
    resp = master.session().post(f"{master.url}{EXEC}", params={"command": "sh"})
    assert resp.status_code == 400
    assert resp.json()["message"] == "Upgrade request required"


# --- the relay -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["spdy", "websocket"])
def test_the_relay_carries_bytes_both_ways_and_passes_a_half_close(master: RunningMaster, agent: FakeAgent,
                                                                   how: str) -> None:
    method, headers = ("POST", spdy_headers()) if how == "spdy" else ("GET", ws_headers())
    up = Upgrade(master, f"{EXEC}?command=echo&command=x&stdin=true", method, headers, early=b"early bytes;")
    assert up.code == 101, up.buf
    assert up.headers["upgrade"] == "SPDY/3.1"
    if how == "spdy":
        assert up.headers["x-stream-protocol-version"] == "v4.channel.k8s.io"
    assert "audit-id" not in up.headers  # the agent's head, verbatim
    assert up.read_exactly(5) == b"hello"
    assert up.read_exactly(12) == b"early bytes;"  # sent behind the request head: not lost in a buffer
    big = bytes(range(256)) * 4096  # 1 MiB in 64 KiB pieces (one thread: an SSLSocket is not for two at once)
    for at in range(0, len(big), 65536):
        up.sock.sendall(big[at:at + 65536])
        assert up.read_exactly(65536) == big[at:at + 65536]
    up.half_close()  # the client is done sending; the agent still has something to say
    assert up.read_to_end() == b"BYE"
    up.close()


def test_the_agent_gets_the_method_path_query_and_handshake_headers_and_nothing_else(
        master: RunningMaster, agent: FakeAgent) -> None:
    before = len(agent.requests)
    query = "command=echo&command=a%20b&container=app&stdin=true&tty=true"
    up = Upgrade(master, f"{EXEC}?{query}", "POST",
                 [*spdy_headers("v4.channel.k8s.io", "v3.channel.k8s.io"), ("Authorization", "Bearer secret"),
                  ("X-Custom", "no")])
    assert up.code == 101
    up.close()
    got = agent.requests[before]
    assert got["method"] == "POST"
    assert got["target"] == f"/exec/{NS}/web/app?{query}"
    h = got["headers"]
    assert h["HTTP_UPGRADE"] == "SPDY/3.1" and h["HTTP_CONNECTION"] == "Upgrade"
    assert h["HTTP_X_STREAM_PROTOCOL_VERSION"] == "v4.channel.k8s.io, v3.channel.k8s.io"  # two headers, joined
    assert "HTTP_AUTHORIZATION" not in h and "HTTP_X_CUSTOM" not in h

    ws = Upgrade(master, f"/api/v1/namespaces/{NS}/pods/annotated/attach?stdout=1", "GET",
                 [*ws_headers("v5.channel.k8s.io,v4.channel.k8s.io"), ("Sec-WebSocket-Extensions", "x")])
    assert ws.code == 101
    ws.close()
    got = agent.requests[before + 1]
    assert got["method"] == "GET" and got["target"] == f"/attach/{NS}/annotated/side?stdout=1"  # default container
    for name, value in ws_headers("v5.channel.k8s.io,v4.channel.k8s.io"):
        assert got["headers"]["HTTP_" + name.upper().replace("-", "_")] == value
    assert got["headers"]["HTTP_SEC_WEBSOCKET_EXTENSIONS"] == "x"

    pf = Upgrade(master, f"/api/v1/namespaces/{NS}/pods/web/portforward?ports=8080", "GET",
                 ws_headers("SPDY/3.1+portforward.k8s.io"))
    assert pf.code == 101
    pf.close()
    assert agent.requests[before + 2]["target"] == f"/portforward/{NS}/web?ports=8080"
    first = Upgrade(master, f"{EXEC}?command=ls", "POST")
    assert first.code == 101
    first.close()
    assert agent.requests[before + 3]["target"] == f"/exec/{NS}/web/app?command=ls"  # the first container


def test_the_python_clients_stream_goes_through_the_master(master: RunningMaster, agent: FakeAgent) -> None:
    """The official client's WebSocket exec: once a bare 400 from Werkzeug, now relayed to the agent."""
    from kubernetes import client, config
    from kubernetes.stream import stream

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(master.kubeconfig)))
    before = len(agent.requests)
    out = stream(core.connect_get_namespaced_pod_exec, "web", NS, command=["ws-hello"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    assert out == "hello from the agent\n"
    got = agent.requests[before]
    assert got["method"] == "GET" and got["target"].startswith(f"/exec/{NS}/web/app?command=ws-hello&")
    assert "v4.channel.k8s.io" in got["headers"]["HTTP_SEC_WEBSOCKET_PROTOCOL"]


def test_a_websocket_through_the_pod_proxy_is_relayed_too(master: RunningMaster, agent: FakeAgent) -> None:
    """kube-apiserver passes upgrades through the proxy subresources (a dashboard's WebSocket); so does pikube,
    through the agent of the pod's board (which relays it on to the pod: tests/agent/test_podproxy.py)."""
    before = len(agent.requests)
    up = Upgrade(master, f"/api/v1/namespaces/{NS}/pods/web:8080/proxy/ws?x=1", "GET",
                 [*ws_headers("chat"), ("Authorization", "Bearer not-for-the-pod")])
    assert up.code == 101, up.buf
    assert up.read_exactly(5) == b"hello"
    up.sock.sendall(b"over the proxy")
    assert up.read_exactly(14) == b"over the proxy"
    up.half_close()
    assert up.read_to_end() == b"BYE"
    up.close()
    got = agent.requests[before]
    assert got["method"] == "GET" and got["target"] == f"/podProxy/{NS}/web/http/8080/ws?x=1"
    assert got["headers"]["HTTP_SEC_WEBSOCKET_PROTOCOL"] == "chat" and got["headers"]["HTTP_UPGRADE"] == "websocket"
    assert "HTTP_AUTHORIZATION" not in got["headers"]


def test_a_refusal_of_the_agent_is_passed_back_as_it_is(master: RunningMaster, agent: FakeAgent) -> None:
    up = Upgrade(master, f"{EXEC}?command=refuse", "POST")
    assert up.code == 403
    assert up.headers["x-accepted-stream-protocol-versions"] == "v4.channel.k8s.io"
    assert up.headers["content-type"] == "application/json"
    assert "x-agent-secret" not in up.headers
    assert up.status()["message"] == "the fake agent refuses"
    up.close()


def test_kubectl_prints_what_the_agent_answers(master: RunningMaster, agent: FakeAgent) -> None:
    """Both kubectls reach the agent through the master (1.33 tries WebSocket, then falls back to SPDY)."""
    for which in ("old", "new"):
        before = len(agent.requests)
        proc = kubectl(master, which, "exec", "-n", NS, "web", "--", "refuse", check=False)
        assert proc.returncode != 0
        assert "the fake agent refuses" in proc.stderr, proc.stderr
        methods = [r["method"] for r in agent.requests[before:]]
        assert methods == (["POST"] if which == "old" else ["GET", "POST"]), methods


# --- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "code", "message"), [
    ("pods/nobody/exec?command=x", 404, 'pods "nobody" not found'),
    ("pods/done/exec?command=x", 400, "cannot exec into a container in a completed pod; current phase is Succeeded"),
    ("pods/done/portforward", 400, "cannot forward ports to a completed pod; current phase is Succeeded"),
    ("pods/done/attach", 400, "cannot attach to a container in a completed pod; current phase is Succeeded"),
    ("pods/starting/exec?command=x", 400, "pod starting is not running yet (phase Pending)"),
    ("pods/unscheduled/portforward", 400, "pod unscheduled does not have a host assigned"),
    ("pods/web/exec?command=x&container=nope", 400, "container nope is not valid for pod web"),
])
def test_bad_requests_get_a_clear_status(master: RunningMaster, agent: FakeAgent, path: str, code: int,
                                         message: str) -> None:
    before = len(agent.requests)
    for method, headers in (("POST", spdy_headers()), ("GET", ws_headers())):
        up = Upgrade(master, f"/api/v1/namespaces/{NS}/{path}", method, headers)
        assert up.code == code
        status = up.status()
        assert status["kind"] == "Status" and status["code"] == code
        assert message in status["message"], status
        up.close()
    assert len(agent.requests) == before  # nothing reached the agent


def test_kubectl_shows_the_bad_input_statuses(master: RunningMaster, agent: FakeAgent) -> None:
    for which in ("old", "new"):
        proc = kubectl(master, which, "exec", "-n", NS, "web", "-c", "nope", "--", "ls", check=False)
        assert proc.returncode != 0 and "container nope is not valid for pod web" in proc.stderr, proc.stderr
        proc = kubectl(master, which, "exec", "-n", NS, "unscheduled", "--", "ls", check=False)
        assert proc.returncode != 0 and "does not have a host assigned" in proc.stderr, proc.stderr


def test_an_agent_that_is_down_is_a_503_naming_the_node_within_seconds(master: RunningMaster,
                                                                       agent: FakeAgent) -> None:
    admin = master.session()
    # A port nobody listens on (refused at once), and one that accepts but never completes a TLS handshake.
    with socket.create_server(("127.0.0.1", 0)) as closed:
        closed_port = closed.getsockname()[1]
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        for node, port in (("down-board", closed_port), ("silent-board", silent.getsockname()[1])):
            publish(master, admin, node, port, agent.pin)
            make_pod(master, admin, f"on-{node}", node=node)
            start = time.monotonic()
            up = Upgrade(master, f"/api/v1/namespaces/{NS}/pods/on-{node}/exec?command=x", "POST")
            took = time.monotonic() - start
            assert up.code == 503
            assert f'node "{node}"' in up.status()["message"]
            assert took < 8, took  # the connect timeout is 5 s
            up.close()
    finally:
        silent.close()


# --- who may ------------------------------------------------------------------------------------------------


def test_a_node_identity_may_not_exec_and_nobody_unauthenticated_gets_a_101(master: RunningMaster,
                                                                             agent: FakeAgent) -> None:
    from master.pki import issue_client_cert, pki_paths

    before = len(agent.requests)
    node_cert = issue_client_cert(pki_paths(master.data_dir), f"system:node:{NODE}", ["system:nodes"])
    for sub in ("exec?command=x", "attach", "portforward"):
        up = Upgrade(master, f"/api/v1/namespaces/{NS}/pods/web/{sub}", "POST",
                     ctx=client_context(master, node_cert))
        assert up.code == 403
        assert f'cannot create resource "pods/{sub.split("?")[0]}"' in up.status()["message"]
        up.close()
    for method, headers in (("POST", spdy_headers()), ("GET", ws_headers())):
        anon = Upgrade(master, f"{EXEC}?command=x", method, headers, ctx=client_context(master, (b"", b"")))
        assert anon.code == 401
        anon.close()
        forged = Upgrade(master, f"{EXEC}?command=x", method, [*headers, ("Authorization", "Bearer forged")],
                         ctx=client_context(master, (b"", b"")))
        assert forged.code == 401
        forged.close()
    assert len(agent.requests) == before


def test_kubectl_auth_can_i(master: RunningMaster, agent: FakeAgent, tmp_path: Path) -> None:
    """`kubectl auth can-i` asks the authorizer every request meets: yes for the admin, no for a node."""
    from core.kubeconfig import KubeConfig, read_kubeconfig, write_kubeconfig
    from master.pki import issue_client_cert, pki_paths

    admin_cfg = read_kubeconfig(master.kubeconfig)
    cert, key = issue_client_cert(pki_paths(master.data_dir), f"system:node:{NODE}", ["system:nodes"])
    node_kubeconfig = tmp_path / "node.kubeconfig"
    write_kubeconfig(node_kubeconfig, KubeConfig(admin_cfg.server, admin_cfg.ca_pem, cert, key))
    for which in ("old", "new"):
        # `pods/exec` is kubectl's TYPE/NAME (the pod named "exec"); a subresource is asked with --subresource.
        for verb, args in (("create", ("pods", "--subresource=exec")), ("create", ("pods/exec",)),
                           ("create", ("pods", "--subresource=attach")),
                           ("create", ("pods", "--subresource=portforward")),
                           ("get", ("pods", "--subresource=proxy")), ("create", ("services", "--subresource=proxy")),
                           ("get", ("nodes", "--subresource=proxy"))):
            proc = kubectl(master, which, "auth", "can-i", verb, *args, "-n", NS, check=False)
            assert proc.stdout.strip() == "yes", (which, args, proc.stdout, proc.stderr)
            proc = kubectl(master, which, "--kubeconfig", str(node_kubeconfig), "auth", "can-i", verb, *args,
                           "-n", NS, check=False)
            assert proc.stdout.strip() == "no" and proc.returncode == 1, (which, args, proc.stdout, proc.stderr)
        # What a node may do, it is told it may: read the pods bound to it.
        proc = kubectl(master, which, "--kubeconfig", str(node_kubeconfig), "auth", "can-i", "get", "pods/web",
                       "-n", NS, check=False)
        assert proc.stdout.strip() == "yes", (which, proc.stdout, proc.stderr)


def test_discovery_lists_the_connect_subresources(master: RunningMaster) -> None:
    resources = {r["name"]: r for r in master.session().get(f"{master.url}/api/v1").json()["resources"]}
    expected = {"pods/exec": ("PodExecOptions", ["create", "get"]),
                "pods/attach": ("PodAttachOptions", ["create", "get"]),
                "pods/portforward": ("PodPortForwardOptions", ["create", "get"]),
                "pods/proxy": ("PodProxyOptions", ["create", "delete", "get", "patch", "update"]),
                "services/proxy": ("ServiceProxyOptions", ["create", "delete", "get", "patch", "update"]),
                "nodes/proxy": ("NodeProxyOptions", ["create", "delete", "get", "patch", "update"])}
    for name, (kind, verbs) in expected.items():
        assert resources[name]["kind"] == kind and resources[name]["verbs"] == verbs, resources[name]


# --- ends and bounds -----------------------------------------------------------------------------------------


def test_a_stream_is_released_within_a_second_when_either_side_leaves(master: RunningMaster,
                                                                      agent: FakeAgent) -> None:
    # The client leaves: the agent's side is closed (its echo loop sees the end) and the master lets go.
    up = Upgrade(master, f"{EXEC}?command=quiet", "POST")
    assert up.code == 101 and up.read_exactly(5) == b"hello"
    port = up.sock.getsockname()[1]
    agent.ended.clear()
    up.close()
    wait_for(agent.ended.is_set, 1.5, "the agent's end of the stream is closed")
    wait_for(lambda: port not in held(master.port), 1.5, "the master lets the client's connection go")


def test_thread_counts_come_back_after_200_sequential_and_20_parallel_streams(master: RunningMaster,
                                                                              agent: FakeAgent) -> None:
    def one(i: int) -> None:
        up = Upgrade(master, f"{EXEC}?command=echo", "POST" if i % 2 else "GET",
                     spdy_headers() if i % 2 else ws_headers())
        assert up.code == 101
        assert up.read_exactly(5) == b"hello"
        msg = f"message {i}".encode()
        up.sock.sendall(msg)
        assert up.read_exactly(len(msg)) == msg
        up.half_close()
        assert up.read_to_end() == b"BYE"
        up.close()

    one(-1)  # the master's lazily built pieces (the agent client context) exist before counting
    baseline = settled_thread_count(master.proc.pid)
    for i in range(200):
        one(i)
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(one, range(20)))
    wait_for(lambda: thread_count(master.proc.pid) <= baseline, 10, "the master's threads are back to the baseline")
    wait_for(lambda: agent.streams_open == 0, 5, f"every stream ended at the agent ({agent.streams_open} open)")


def test_the_stream_cap_per_board_and_the_idle_timeout(tmp_path: Path, agent: FakeAgent) -> None:
    m = start_master(tmp_path / "capped", extra_args=("--max-streams-per-node", "2",
                                                      "--streaming-connection-idle-timeout", "2s"))
    try:
        admin = m.session()
        publish(m, admin, NODE, agent.port, agent.pin)
        wait_for(lambda: admin.post(f"{m.url}/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code
                 in (201, 409), 10, "namespace")
        make_pod(m, admin, "web")
        held_streams = [Upgrade(m, f"{EXEC}?command=echo", "POST") for _ in range(2)]
        assert [u.code for u in held_streams] == [101, 101]
        third = Upgrade(m, f"{EXEC}?command=echo", "POST")
        assert third.code == 429
        assert f'too many streams to node "{NODE}"' in third.status()["message"]
        third.close()
        # A stream that moves bytes stays; a quiet one ends at the idle timeout (its slot is then free again).
        busy, quiet = held_streams
        assert quiet.read_exactly(5) == b"hello" and busy.read_exactly(5) == b"hello"
        start = time.monotonic()
        ended = threading.Event()

        def wait_end() -> None:
            quiet.read_to_end()
            ended.set()

        threading.Thread(target=wait_end, daemon=True).start()
        while not ended.is_set() and time.monotonic() - start < 10:
            busy.sock.sendall(b"tick")
            assert busy.read_exactly(4) == b"tick"
            ended.wait(0.3)
        took = time.monotonic() - start
        assert ended.is_set() and 1.5 < took < 4, took
        busy.sock.sendall(b"still here")
        assert busy.read_exactly(10) == b"still here"
        again = Upgrade(m, f"{EXEC}?command=echo", "POST")
        assert again.code == 101
        for u in (busy, quiet, again):
            u.close()
    finally:
        m.stop()


def test_head_and_options_on_a_resource_path(master: RunningMaster) -> None:
    """The API route takes HEAD and OPTIONS too (the proxy subresources pass them on): elsewhere HEAD is a GET
    without a body and OPTIONS a 405 Status."""
    admin = master.session()
    head = admin.head(f"{master.url}/api/v1/namespaces/default", timeout=10)
    assert head.status_code == 200 and head.content == b""
    options = admin.options(f"{master.url}/api/v1/namespaces/default", timeout=10)
    assert options.status_code == 405 and options.json()["kind"] == "Status"
