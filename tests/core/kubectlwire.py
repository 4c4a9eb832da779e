"""A stand-in API server that serves `kubectl exec` with the protocol modules alone (no master, no agent, no Docker).

`GET` of the pod answers a running pod; the exec request is upgraded (SPDY/3.1
or WebSocket, as the client asks) and answered with `stdout`, `stderr` and an
exit code chosen by the test. Every byte the client sent after the upgrade is
kept in `captured`, which is how the test vectors in `vectors/` were recorded.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.httpserver import HIJACK_KEY, Server
from core.streams import channels, spdy

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Running"}}


DISCOVERY: dict[str, Any] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
         "verbs": ["get", "list"]},
        {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
         "verbs": ["create", "get"]}]},
}


class StandIn:
    def __init__(self, tmp: Path, stdout: bytes, stderr: bytes, code: int) -> None:
        from agent import servingcert

        cert, key = servingcert.make("standin", ["127.0.0.1"])
        (tmp / "s.crt").write_bytes(cert)
        (tmp / "s.key").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tmp / "s.crt"), str(tmp / "s.key"))
        self.stdout, self.stderr, self.code = stdout, stderr, code
        self.captured = bytearray()
        self.protocol = ""
        self.server = Server(self.app, "127.0.0.1", 0, ssl_context=ctx, name="standin")
        self.server.bind()
        self.server.start()
        self.kubeconfig = tmp / "kubeconfig"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{self.server.port}",
                                                   "insecure-skip-tls-verify": True}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {"token": "t"}}]}))

    def stop(self) -> None:
        self.server.stop()

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        doc = POD if path == "/api/v1/namespaces/default/pods/x" else DISCOVERY.get(path)
        if doc is not None and environ["REQUEST_METHOD"] == "GET" and "HTTP_UPGRADE" not in environ:
            body = json.dumps(doc).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path.endswith("/exec"):
            taken = environ[HIJACK_KEY]()
            if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                self._websocket(environ, taken.sock, taken.buffered)
            else:
                self._spdy(environ, taken.sock, taken.buffered)
            return []
        body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404,"reason":"NotFound"}'
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _read(self, sock: socket.socket, early: bytes) -> Iterable[bytes]:
        if early:
            self.captured += early
            yield early
        while True:
            if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                select.select([sock], [], [], 10)
            data = sock.recv(65536)
            self.captured += data
            yield data
            if not data:
                return

    def _spdy(self, environ: dict[str, Any], sock: socket.socket, early: bytes) -> None:
        versions = [v.strip() for v in environ.get("HTTP_X_STREAM_PROTOCOL_VERSION", "").split(",")]
        self.protocol = "v4.channel.k8s.io" if "v4.channel.k8s.io" in versions else ""
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
        session = spdy.Session()
        streams: dict[str, int] = {}
        for data in self._read(sock, early):
            for f in session.receive(data):
                if isinstance(f, spdy.SynStream):
                    session.send(spdy.SynReply(f.stream_id))
                    streams[f.header("streamtype")] = f.stream_id
            if {"error", "stdout", "stderr"} <= streams.keys():
                session.send_data(streams["stdout"], self.stdout, fin=True)
                session.send_data(streams["stderr"], self.stderr, fin=True)
                session.send_data(streams["error"], channels.exit_status(self.code), fin=True)
            sock.sendall(session.data_to_send())
            if {"error", "stdout", "stderr"} <= streams.keys() or not data:
                return

    def _websocket(self, environ: dict[str, Any], sock: socket.socket, early: bytes) -> None:
        self.protocol = channels.choose(channels.offered(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "")),
                                        channels.EXEC_PROTOCOLS) or ""
        accept = channels.accept_token(environ["HTTP_SEC_WEBSOCKET_KEY"])
        sock.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {self.protocol}\r\n\r\n".encode())
        conn = channels.ChannelConnection(self.protocol)
        conn.send(channels.STDOUT, self.stdout)
        conn.send(channels.STDERR, self.stderr)
        conn.send(channels.ERROR, channels.exit_status(self.code))
        conn.close(1000)
        sock.sendall(conn.data_to_send())
        for data in self._read(sock, early):  # until kubectl answers the close
            if any(isinstance(e, channels.Closed) for e in conn.receive(data)) or not data:
                return
