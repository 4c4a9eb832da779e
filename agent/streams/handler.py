"""The agent's stream endpoints on its HTTPS server: checks, the `101`, then the session on this thread.

Routing and authentication stay with the server (`agent.logserver`); here a
request for `/exec`, `/attach` or `/portforward` is checked — the pod is on this
board, the container exists and runs, the flags make sense, a protocol is in
common, the board is below its cap of concurrent streams — and any failure is a
Kubernetes `Status` with its HTTP code. Then the `101` goes out, the server's
connection is taken over (`HIJACK_KEY`), and the session runs on the
connection's own thread until either side leaves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.runtime import labels as L
from agent.runtime.docker import Container, DockerRuntime, RuntimeError_
from agent.streams import engine, portforward, remotecommand
from agent.streams.request import Negotiated, StreamError, StreamRequest, negotiate, parse
from agent.streams.transports import SpdyTransport, WebSocketTransport
from core.httpserver import HIJACK_KEY

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PREFIXES = ("/exec/", "/attach/", "/portforward/", "/portForward/")
DIAL_TIMEOUT = 5.0
SocketIn = Callable[[int], Any]  # a new TCP socket in the network namespace of process `pid` (the pod's sandbox)


@dataclass(frozen=True)
class StreamLimits:
    max_streams: int = 32  # concurrent exec/attach/port-forward sessions on this board
    idle_timeout: float = 4 * 3600.0  # --streaming-connection-idle-timeout, the kubelet's default


class StreamHandler:
    def __init__(self, runtime: DockerRuntime, find_pod: Callable[[str, str], Obj | None],
                 socket_in: SocketIn, limits: StreamLimits | None = None) -> None:
        self.runtime, self.find_pod, self.limits = runtime, find_pod, limits or StreamLimits()
        self.socket_in = socket_in
        self._lock = threading.Lock()
        self.active = 0

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith(PREFIXES)

    def __call__(self, environ: Obj, start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            if environ["REQUEST_METHOD"] not in ("GET", "POST"):
                raise StreamError(405, "streams are opened with GET (WebSocket) or POST (SPDY)")
            req = parse(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))
            neg = negotiate(req, environ)
            target = self._check(req)
            with self._lock:
                if self.active >= self.limits.max_streams:
                    raise StreamError(429, f"too many streams on this node (at most {self.limits.max_streams})")
                self.active += 1
        except StreamError as exc:
            body = exc.body()
            start_response(exc.http_status(), [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body))), *exc.headers])
            return [body]
        try:
            taken = environ[HIJACK_KEY]()  # the connection and any bytes the server read past the request's head
            sock = taken.sock
            sock.settimeout(10.0)
            head = "HTTP/1.1 101 Switching Protocols\r\n" + "".join(f"{k}: {v}\r\n" for k, v in neg.headers)
            sock.sendall((head + "\r\n").encode("latin-1"))
            self._session(req, neg, target, sock, taken.buffered)
        except OSError as exc:
            log.debug("stream %s ended: %s", environ["PATH_INFO"], exc)
        finally:
            with self._lock:
                self.active -= 1
        return []

    # -- checks before the 101 ---------------------------------------------------------------------

    def _check(self, req: StreamRequest) -> Container:
        pod = self.find_pod(req.namespace, req.pod)
        if pod is None:
            raise StreamError(404, f'pod "{req.pod}" in namespace "{req.namespace}" is not on this node')
        try:
            found = self.runtime.containers(pod["metadata"]["uid"])
        except RuntimeError_ as exc:
            raise StreamError(503, f"the container runtime on this node does not answer: {exc.detail}") from exc
        if req.kind == "portforward":
            sandbox = [c for c in found if c.kind is L.Kind.SANDBOX and c.running and c.pid]
            if not sandbox:
                raise StreamError(400, f'pod "{req.pod}" is not running (no sandbox)')
            return sandbox[0]
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        if req.container not in names:
            raise StreamError(400, f'container "{req.container}" is not valid for pod "{req.pod}" '
                                   f"(containers: {', '.join(str(n) for n in names)})")
        insts = sorted([c for c in found if c.container_name == req.container and c.kind is not L.Kind.SANDBOX],
                       key=lambda c: (c.restart_count, c.created), reverse=True)
        if not insts or not insts[0].running:
            raise StreamError(400, f'container "{req.container}" in pod "{req.pod}" is not running')
        return insts[0]

    # -- after the 101 ---------------------------------------------------------------------------

    def _session(self, req: StreamRequest, neg: Negotiated, target: Container, sock: Any, early: bytes) -> None:
        idle = self.limits.idle_timeout
        if req.kind == "portforward":
            dial = self._dialer(target.pid)
            if neg.transport == "spdy" or neg.protocol.startswith("SPDY/"):
                portforward.run_spdy(sock, early, dial, idle, tunnel=neg.transport == "websocket")
            else:
                portforward.run_channels(sock, early, req.ports, dial, idle)
            return
        transport: WebSocketTransport | SpdyTransport
        if neg.transport == "websocket":
            transport = WebSocketTransport(neg.protocol, req.stdout, req.stderr)
        else:
            transport = SpdyTransport(req.stdin, req.stdout, req.stderr, req.tty)
        starter = self._exec if req.kind == "exec" else self._attach
        remotecommand.run(sock, early, transport, lambda: starter(req, target), idle)

    def _exec(self, req: StreamRequest, c: Container) -> remotecommand.DockerSide:
        api = self.runtime.api
        try:
            ex = api.exec_create(c.id, req.command, stdin=req.stdin, stdout=req.stdout, stderr=req.stderr,
                                 tty=req.tty)
        except Exception as exc:
            raise remotecommand.SessionError(f"cannot exec in container {req.container}: {_why(exc)}") from exc
        exec_id = str(ex["Id"])
        hijacked = engine.exec_start(self.runtime.host, exec_id, req.tty)

        def resize(width: int, height: int) -> None:
            api.exec_resize(exec_id, height=height, width=width)

        def exit_code() -> int | None:
            return _exec_exit_code(api, exec_id)

        return remotecommand.DockerSide(hijacked, req.tty, resize, exit_code, stdin=req.stdin)

    def _attach(self, req: StreamRequest, c: Container) -> remotecommand.DockerSide:
        api = self.runtime.api
        config = (api.inspect_container(c.id).get("Config") or {})
        tty = bool(config.get("Tty"))
        if req.stdin and not config.get("OpenStdin"):
            raise remotecommand.SessionError(f'container "{req.container}" was not created with stdin: true')
        hijacked = engine.attach(self.runtime.host, c.id, req.stdin, req.stdout, req.stderr)

        def resize(width: int, height: int) -> None:
            api.resize(c.id, height=height, width=width)

        return remotecommand.DockerSide(hijacked, tty, resize, lambda: None, stdin=req.stdin)

    def _dialer(self, pid: int) -> portforward.Dial:
        def dial(port: int) -> Any:
            sock = self.socket_in(pid)
            sock.settimeout(DIAL_TIMEOUT)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                sock.close()
                raise
            return sock
        return dial


def _exec_exit_code(api: Any, exec_id: str) -> int | None:
    """The exec's exit code; Docker's inspect can lag the stream's end a little, so it is asked a few times."""
    deadline = time.monotonic() + 5.0
    delay = 0.01
    while True:
        info = api.exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            return -1
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _why(exc: BaseException) -> str:
    return str(getattr(exc, "explanation", None) or exc)
