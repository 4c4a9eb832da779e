"""What a stream request asks for and which protocol it will speak, decided before the `101`.

The master relays the client's method, path, query and upgrade headers to
`/exec/NS/POD/CONTAINER`, `/attach/NS/POD/CONTAINER` and `/portforward/NS/POD`
here. Anything wrong (an unknown path, a bad flag, no protocol in common) is a
`StreamError` carrying the HTTP code and a Kubernetes `Status` reason, answered
before the connection changes protocol, so kubectl prints it (and kubectl ≥ 1.30
falls back from WebSocket to SPDY on a refused WebSocket handshake).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from core.streams import channels

SPDY_EXEC_PROTOCOLS = (channels.V4,)  # the kubelet serves v4..v1 over SPDY; v4 carries exit codes
SPDY_PORTFORWARD = "portforward.k8s.io"
_TRUE = ("1", "t", "T", "true", "True", "TRUE")
_FALSE = ("0", "f", "F", "false", "False", "FALSE", "")
_REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
         429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


class StreamError(Exception):
    def __init__(self, code: int, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers or []

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": str(self),
                "reason": _REASONS.get(self.code, "Unknown"), "code": self.code}

    def http_status(self) -> str:
        return f"{self.code} {_TEXT.get(self.code, 'Error')}"

    def body(self) -> bytes:
        return json.dumps(self.status()).encode()


@dataclass(frozen=True)
class StreamRequest:
    kind: str  # exec, attach, portforward
    namespace: str
    pod: str
    container: str = ""
    command: list[str] = field(default_factory=list)
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Negotiated:
    transport: str  # "websocket" or "spdy"
    protocol: str  # the chosen subprotocol / stream protocol version
    headers: list[tuple[str, str]]  # the 101's headers


def _flag(query: dict[str, list[str]], *names: str) -> bool:
    for name in names:
        if name in query:
            value = query[name][0]
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise StreamError(400, f'invalid value "{value}" for query parameter "{name}" (want true or false)')
    return False


def _ports(text: str) -> tuple[int, ...]:
    ports = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise StreamError(400, f'invalid port "{part}"')
        ports.append(int(part))
    return tuple(ports)


def parse(path: str, query_string: str) -> StreamRequest:
    """The request behind `path` and its query; a StreamError (400/404) when it is not one."""
    parts = [unquote(p) for p in path.split("/") if p]
    query = parse_qs(query_string, keep_blank_values=True)
    kind = parts[0] if parts else ""
    if kind == "portForward":
        kind = "portforward"
    if kind in ("exec", "attach"):
        if len(parts) != 4:
            raise StreamError(404, f"not found; use /{kind}/<namespace>/<pod>/<container>")
        req = StreamRequest(kind, parts[1], parts[2], parts[3],
                            command=query.get("command", []),
                            stdin=_flag(query, "stdin", "input"), stdout=_flag(query, "stdout", "output"),
                            stderr=_flag(query, "stderr", "error"), tty=_flag(query, "tty"))
        if kind == "exec" and not req.command:
            raise StreamError(400, "you must specify at least one command for the container")
        if not (req.stdin or req.stdout or req.stderr):
            raise StreamError(400, "you must specify at least one of stdin, stdout, stderr")
        if req.tty and req.stderr:
            req = StreamRequest(**{**req.__dict__, "stderr": False})  # a terminal merges stderr into stdout
        return req
    if kind == "portforward":
        if len(parts) != 3:
            raise StreamError(404, "not found; use /portforward/<namespace>/<pod>")
        ports = _ports(",".join(query.get("ports", []) + query.get("port", [])))
        return StreamRequest(kind, parts[1], parts[2], ports=ports)
    raise StreamError(404, "not found")


def negotiate(req: StreamRequest, environ: dict[str, Any]) -> Negotiated:
    """The protocol both sides speak and the `101`'s headers; a StreamError when there is none."""
    upgrade = environ.get("HTTP_UPGRADE", "").strip().lower()
    if upgrade == "websocket":
        key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
        if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13" or not key:
            raise StreamError(400, "a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key",
                              [("Sec-WebSocket-Version", "13")])
        offers = channels.offered(environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", ""))
        if req.kind == "portforward":
            supported: tuple[str, ...] = (channels.PORTFORWARD_TUNNEL, channels.V4)
            chosen = channels.choose(offers, supported)
            if chosen is None and channels.V5 in offers:
                chosen = channels.V4
            if chosen == channels.V4 and not req.ports:
                raise StreamError(400, "query parameter \"ports\" is required for port-forward over channels")
        else:
            supported = channels.EXEC_PROTOCOLS
            chosen = channels.choose(offers, supported)
        if chosen is None:
            raise StreamError(400, f"no WebSocket subprotocol in common: client offers {offers or 'none'}, "
                                   f"this node speaks {', '.join(supported)}")
        return Negotiated("websocket", chosen, [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", channels.accept_token(key)), ("Sec-WebSocket-Protocol", chosen)])
    if upgrade.startswith("spdy/3.1"):
        offers = [v.strip() for v in environ.get("HTTP_X_STREAM_PROTOCOL_VERSION", "").split(",") if v.strip()]
        supported = (SPDY_PORTFORWARD,) if req.kind == "portforward" else SPDY_EXEC_PROTOCOLS
        if not offers:
            raise StreamError(400, "X-Stream-Protocol-Version is required")
        chosen = next((v for v in offers if v in supported), None)
        if chosen is None:
            raise StreamError(403, f"unable to negotiate protocol: client supports {offers}, "
                                   f"server supports {list(supported)}",
                              [("X-Accepted-Stream-Protocol-Versions", ", ".join(supported))])
        return Negotiated("spdy", chosen, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                           ("X-Stream-Protocol-Version", chosen)])
    raise StreamError(400, "Upgrade request required (WebSocket or SPDY/3.1)")
