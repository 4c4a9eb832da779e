"""The remote-command channel protocol over WebSocket (`v4.channel.k8s.io`, `v5.channel.k8s.io`), sans-IO.

kubectl ≥ 1.30 (v5) and the official Python client (v5 or v4) run exec and
attach this way, and the Python client's port-forward uses the same channels.
Every message is binary; its first byte is the channel (0 stdin, 1 stdout,
2 stderr, 3 error, 4 resize), the rest is payload. v5 adds the client's
`[255, channel]` message, which half-closes that channel (stdin EOF). A text
message is a protocol error. The session ends with the Status on channel 3 and
a close frame with code 1000. WebSocket framing itself is wsproto's: it answers
pings and close frames, and hands payloads over as they arrive, so a large
message is never buffered whole here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.events import Event as WsEvent
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4)  # in order of preference
PORTFORWARD_TUNNEL = "SPDY/3.1+portforward.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [255, channel] closes that channel
MAX_CHUNK = 32 * 1024  # the payload of one channel message we send
MAX_RAW_CHUNK = 256 * 1024  # one tunnel message (SPDY bytes): fewer, larger messages cost less per byte
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ProtocolError(Exception):
    """The peer broke the channel protocol (a text message, a message without a channel byte...)."""


def accept_token(key: str) -> str:
    """Sec-WebSocket-Accept for a handshake's Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.strip().encode() + _GUID).digest()).decode()


def offered(header: str) -> list[str]:
    """The subprotocols in a Sec-WebSocket-Protocol header (comma-separated, maybe repeated and joined)."""
    return [p.strip() for p in header.split(",") if p.strip()]


def choose(offers: list[str], supported: tuple[str, ...]) -> str | None:
    """Our most preferred protocol the client offered, or None."""
    return next((p for p in supported if p in offers), None)


@dataclass(frozen=True)
class ChannelData:
    channel: int
    data: bytes


@dataclass(frozen=True)
class ChannelClosed:
    channel: int


@dataclass(frozen=True)
class Closed:
    """The peer closed the WebSocket (our answering close frame is already queued)."""

    code: int
    reason: str = ""


@dataclass(frozen=True)
class Bytes:
    """A binary message's payload, raw (the port-forward tunnel: SPDY bytes, no channel byte)."""

    data: bytes


Event = ChannelData | ChannelClosed | Closed | Bytes


class ChannelConnection:
    """A WebSocket after its handshake, speaking channels (or, with `raw`, plain binary messages)."""

    def __init__(self, protocol: str = V5, client: bool = False, raw: bool = False) -> None:
        self.protocol = protocol
        self.raw = raw
        self.ws = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
        self.closed = False
        self._out = bytearray()
        self._channel: int | None = None  # the channel of the message being received
        self._close_signal = bytearray()

    def receive(self, data: bytes) -> list[Event]:
        """Events from `data` (b"" means the connection ended without a close frame)."""
        try:
            self.ws.receive_data(data or None)
            return [e for event in self.ws.events() for e in self._handle(event)]
        except RemoteProtocolError as exc:
            raise ProtocolError(f"bad WebSocket data: {exc}") from exc

    def _handle(self, event: object) -> list[Event]:
        if isinstance(event, Ping):
            self._send(event.response())
            return []
        if isinstance(event, CloseConnection):
            if not self.closed:
                self._send(event.response())
                self.closed = True
            return [Closed(event.code, event.reason or "")]
        if isinstance(event, TextMessage):
            raise ProtocolError("text message on a binary channel protocol")
        if not isinstance(event, BytesMessage):
            return []
        payload = bytes(event.data)
        if self.raw:
            return [Bytes(payload)] if payload else []
        out: list[Event] = []
        if self._channel is None and payload:
            self._channel, payload = payload[0], payload[1:]
        if self._channel == CLOSE:
            self._close_signal += payload
            if len(self._close_signal) > 1:
                raise ProtocolError("close signal longer than one channel byte")
        elif self._channel is not None and payload:
            out.append(ChannelData(self._channel, payload))
        if event.message_finished:
            if self._channel is None:
                raise ProtocolError("empty message: no channel byte")
            if self._channel == CLOSE:
                if self.protocol != V5 or len(self._close_signal) != 1:
                    raise ProtocolError("close signal outside v5 or without a channel")
                out.append(ChannelClosed(self._close_signal[0]))
                self._close_signal.clear()
            self._channel = None
        return out

    def _send(self, event: WsEvent) -> None:
        if self.closed:
            return
        try:
            self._out += self.ws.send(event)
        except LocalProtocolError:
            self.closed = True

    def send(self, channel: int, data: bytes) -> None:
        """`data` on `channel`, in messages of at most MAX_CHUNK bytes (one empty message if `data` is empty)."""
        view = memoryview(data)
        while True:
            self._send(BytesMessage(bytes([channel]) + bytes(view[:MAX_CHUNK])))
            view = view[MAX_CHUNK:]
            if not len(view):
                return

    def send_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while len(view):
            self._send(BytesMessage(bytes(view[:MAX_RAW_CHUNK])))
            view = view[MAX_RAW_CHUNK:]

    def close_channel(self, channel: int) -> None:
        """v5: half-close `channel` (a client sends this for stdin EOF)."""
        self._send(BytesMessage(bytes([CLOSE, channel])))

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self._send(CloseConnection(code=code, reason=reason or None))
            self.closed = True

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out


# -- the error channel's Status and the resize channel's JSON ----------------------------------------

def success_status() -> bytes:
    return json.dumps({"metadata": {}, "status": "Success"}).encode()


def exit_status(code: int) -> bytes:
    """The v4/v5 Status for a command that ended with `code` (Success for 0); the ExitCode cause comes first.

    A cause's type is spelled `reason` on the wire (Go's metav1.StatusCause: `Type ... json:"reason"`);
    kubectl says "no ExitCode cause given" for a `type` key.
    """
    if code == 0:
        return success_status()
    return json.dumps({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command, exit status {code}",
        "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }).encode()


def failure_status(message: str, reason: str = "InternalError", code: int = 500) -> bytes:
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": message, "reason": reason, "code": code}).encode()


class ResizeDecoder:
    """Terminal sizes from the resize channel or stream: JSON objects `{"Width":W,"Height":H}`, back to back."""

    MAX_BUFFER = 4096

    def __init__(self) -> None:
        self._buf = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        """The (width, height) pairs `data` completes."""
        self._buf += data.decode("utf-8", "replace")
        sizes: list[tuple[int, int]] = []
        while True:
            text = self._buf.lstrip()
            if not text:
                self._buf = ""
                return sizes
            try:
                obj, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                if len(text) > self.MAX_BUFFER:
                    raise ProtocolError("resize message is not JSON") from None
                self._buf = text
                return sizes
            self._buf = text[end:]
            if not isinstance(obj, dict):
                raise ProtocolError("resize message is not a JSON object")
            width, height = obj.get("Width", obj.get("width")), obj.get("Height", obj.get("height"))
            if not isinstance(width, int) or not isinstance(height, int) or width < 0 or height < 0:
                raise ProtocolError(f"resize message without sizes: {obj}")
            sizes.append((width, height))
