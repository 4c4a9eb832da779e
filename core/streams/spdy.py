"""SPDY/3.1 framing, as kubectl's spdystream speaks it: frames in, frames out, no sockets (sans-IO).

kubectl 1.20 speaks only SPDY for exec/attach/cp/port-forward, 1.33 falls back to
it, and its port-forward tunnel carries SPDY inside WebSocket messages, so the
agent needs it on every version; no maintained Python library exists. A
`Session` parses bytes into frames and encodes frames into bytes. Header
blocks are zlib streams preset with the SPDY/3 dictionary, one compression
context per direction for the whole connection (each block sync-flushed).
Go's spdystream keeps no flow-control windows, so neither does this: window
updates are parsed and ignored, and none is sent. PINGs from the peer are
echoed by the session itself.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from core.streams.dictionary import DICTIONARY

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, NOOP, PING, GOAWAY, HEADERS, WINDOW_UPDATE = range(1, 10)
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
# RST_STREAM status codes (draft 3 §2.6.3)
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6
MAX_DATA_CHUNK = 64 * 1024  # what one DATA frame we send carries
MAX_FRAME = 1 << 20  # the largest frame accepted from a peer (control or data)
MAX_HEADER_BLOCK = 256 * 1024  # a header block's size once inflated
MAX_HEADERS = 100

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3 as this module understands it."""


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    fin: bool = False
    assoc_id: int = 0
    priority: int = 0
    unidirectional: bool = False

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int = CANCEL


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_id: int = 0
    status: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = SynStream | SynReply | HeadersFrame | Data | RstStream | Settings | Ping | GoAway | WindowUpdate


class HeaderCodec:
    """The two zlib contexts of one connection: deflate what we send, inflate what we receive."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: Headers) -> bytes:
        out = [struct.pack(">I", len(headers))]
        for name, values in headers.items():
            key, value = name.lower().encode(), "\0".join(values).encode()
            out += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
        raw = b"".join(out)
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> Headers:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BLOCK + 1)
        except zlib.error as exc:
            raise ProtocolError(f"header block does not inflate with the SPDY/3 dictionary: {exc}") from exc
        if len(raw) > MAX_HEADER_BLOCK or self._inflate.unconsumed_tail:
            raise ProtocolError(f"header block larger than {MAX_HEADER_BLOCK} bytes")
        return _parse_block(raw)


def _parse_block(raw: bytes) -> Headers:
    def take(pos: int, what: str) -> tuple[bytes, int]:
        if pos + 4 > len(raw):
            raise ProtocolError(f"header block ends inside a {what} length")
        (n,) = struct.unpack_from(">I", raw, pos)
        if pos + 4 + n > len(raw):
            raise ProtocolError(f"header block ends inside a {what}")
        return raw[pos + 4:pos + 4 + n], pos + 4 + n

    if len(raw) < 4:
        raise ProtocolError("header block shorter than its count")
    (count,) = struct.unpack_from(">I", raw, 0)
    if count > MAX_HEADERS:
        raise ProtocolError(f"header block with {count} headers (at most {MAX_HEADERS})")
    headers: Headers = {}
    pos = 4
    for _ in range(count):
        name, pos = take(pos, "name")
        value, pos = take(pos, "value")
        if not name:
            raise ProtocolError("empty header name")
        try:
            key = name.decode("ascii")
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"header not text: {exc}") from exc
        if key != key.lower():
            raise ProtocolError(f"header name {key!r} not lower-case")
        headers.setdefault(key, []).extend(text.split("\0"))
    if pos != len(raw):
        raise ProtocolError("bytes after the last header")
    return headers


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) >= 1 << 24:
        raise ValueError("control frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


class Session:
    """One SPDY connection seen from one end: `receive` bytes, `send` frames, `data_to_send` what goes out.

    `client` picks the stream ids we would open (odd for a client) and which
    pings are ours (a peer's ping is echoed, ours are not).
    """

    def __init__(self, client: bool = False, max_frame: int = MAX_FRAME) -> None:
        self.client = client
        self.max_frame = max_frame
        self.codec = HeaderCodec()
        self._in = bytearray()
        self._out = bytearray()
        self._next_id = 1 if client else 2
        self.goaway_sent = False

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Frame]:
        """The whole frames that `data` completes (the rest stays buffered); peer pings are queued back."""
        self._in += data
        frames: list[Frame] = []
        while len(self._in) >= 8:
            (length,) = struct.unpack_from(">I", self._in, 4)
            length &= 0xFFFFFF
            if length > self.max_frame:
                raise ProtocolError(f"frame of {length} bytes (at most {self.max_frame})")
            if len(self._in) < 8 + length:
                break
            head, payload = bytes(self._in[:8]), bytes(self._in[8:8 + length])
            del self._in[:8 + length]
            frame = self._parse(head, payload)
            if frame is None:
                continue
            if isinstance(frame, Ping) and (frame.ping_id % 2 == 1) != self.client:
                self.send(frame)
            frames.append(frame)
        return frames

    def _parse(self, head: bytes, payload: bytes) -> Frame | None:
        first, second, flags = struct.unpack_from(">HHB", head, 0)
        if not first & 0x8000:
            stream_id = (first << 16 | second) & 0x7FFFFFFF
            if stream_id == 0:
                raise ProtocolError("DATA frame on stream 0")
            return Data(stream_id, payload, bool(flags & FLAG_FIN))
        version, kind = first & 0x7FFF, second
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}, not 3")
        fin = bool(flags & FLAG_FIN)

        def need(n: int) -> None:
            if len(payload) < n:
                raise ProtocolError(f"control frame type {kind} of {len(payload)} bytes (needs {n})")

        if kind == SYN_STREAM:
            need(10)
            sid, assoc, prio = struct.unpack_from(">IIB", payload, 0)
            return SynStream(sid & 0x7FFFFFFF, self.codec.decode(payload[10:]), fin, assoc & 0x7FFFFFFF, prio >> 5,
                             bool(flags & FLAG_UNIDIRECTIONAL))
        if kind in (SYN_REPLY, HEADERS):
            need(4)
            sid = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            cls = SynReply if kind == SYN_REPLY else HeadersFrame
            return cls(sid, self.codec.decode(payload[4:]), fin)
        if kind == RST_STREAM:
            need(8)
            sid, status = struct.unpack_from(">II", payload, 0)
            return RstStream(sid & 0x7FFFFFFF, status)
        if kind == SETTINGS:
            need(4)
            (count,) = struct.unpack_from(">I", payload, 0)
            need(4 + 8 * count)
            entries = []
            for i in range(count):
                word, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                entries.append((word >> 24, word & 0xFFFFFF, value))
            return Settings(tuple(entries))
        if kind == PING:
            need(4)
            return Ping(struct.unpack_from(">I", payload, 0)[0])
        if kind == GOAWAY:
            need(4)
            last = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            status = struct.unpack_from(">I", payload, 4)[0] if len(payload) >= 8 else 0
            return GoAway(last, status)
        if kind == WINDOW_UPDATE:
            need(8)
            sid, delta = struct.unpack_from(">II", payload, 0)
            return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        return None  # NOOP and unknown control frames are ignored (draft 3 §2.2.1)

    # -- sending --------------------------------------------------------------------------------

    def open_id(self) -> int:
        """The id of the next stream this end opens."""
        sid = self._next_id
        self._next_id += 2
        return sid

    def send(self, frame: Frame) -> None:
        self._out += self.encode(frame)

    def send_data(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        """`data` on a stream, cut into DATA frames of at most MAX_DATA_CHUNK bytes."""
        view = memoryview(data)
        while len(view) > MAX_DATA_CHUNK:
            self.send(Data(stream_id, bytes(view[:MAX_DATA_CHUNK])))
            view = view[MAX_DATA_CHUNK:]
        if len(view) or fin:
            self.send(Data(stream_id, bytes(view), fin))

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            if not 0 < frame.stream_id < 1 << 31 or len(frame.data) >= 1 << 24:
                raise ValueError("bad DATA frame")
            return struct.pack(">II", frame.stream_id, (int(frame.fin) << 24) | len(frame.data)) + frame.data
        fin = FLAG_FIN if getattr(frame, "fin", False) else 0
        if isinstance(frame, SynStream):
            flags = fin | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
            body = struct.pack(">IIBB", frame.stream_id, frame.assoc_id, (frame.priority & 7) << 5, 0)
            return _control(SYN_STREAM, flags, body + self.codec.encode(frame.headers))
        if isinstance(frame, SynReply):
            return _control(SYN_REPLY, fin, struct.pack(">I", frame.stream_id) + self.codec.encode(frame.headers))
        if isinstance(frame, HeadersFrame):
            return _control(HEADERS, fin, struct.pack(">I", frame.stream_id) + self.codec.encode(frame.headers))
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.entries)
            return _control(SETTINGS, 0, body)
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            self.goaway_sent = True
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_good_id, frame.status))
        return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out
