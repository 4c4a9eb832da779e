"""Port-forward sessions: SPDY `portforward.k8s.io` (raw or tunnelled in WebSocket) and the v4 channel variant.

SPDY (kubectl 1.20, and ≥ 1.31 inside binary WebSocket messages): for each
local connection the client opens an error stream and a data stream with the
same `requestid` (older clients send none: the data stream then follows its
error stream, at the error stream's id plus 2) and a `port` header. The agent answers each SYN_STREAM at
once, connects to `localhost:<port>` inside the pod's network namespace, and
copies bytes between the data stream and that connection; a failure is a
message on the error stream. The channel variant (the Python client) forwards
`?ports=` one connection each: channel 2i is port i's data, 2i+1 its errors, and
the first message on each channel is the port, 2 bytes little-endian.

All connections of one session are served by its one thread.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.streams import pipe
from core.streams import channels, spdy

log = logging.getLogger(__name__)
Dial = Callable[[int], socket.socket]  # a connection to `port` in the pod (raises OSError)
MAX_CONNECTIONS = 128  # open forwarded connections in one SPDY session (more are refused on their error stream)


@dataclass
class _Pair:
    key: str
    port: int
    data_id: int = 0
    error_id: int = 0
    target: pipe.End | None = None
    done: bool = False  # the pod side ended and the client was told


@dataclass
class _Spdy:
    session: spdy.Session = field(default_factory=spdy.Session)
    pairs: dict[str, _Pair] = field(default_factory=dict)
    by_data: dict[int, _Pair] = field(default_factory=dict)
    gone: bool = False
    served: int = 0  # connections that ended (their pairs are forgotten)

    def forget(self, pair: _Pair) -> None:
        if self.pairs.get(pair.key) is pair:
            del self.pairs[pair.key]
            self.served += 1
        self.by_data.pop(pair.data_id, None)


class TunnelWire:
    """SPDY bytes inside binary WebSocket messages (kubectl ≥ 1.31's tunnel)."""

    def __init__(self) -> None:
        self.ws = channels.ChannelConnection(channels.PORTFORWARD_TUNNEL, raw=True)
        self.closed = False

    def unwrap(self, data: bytes) -> bytes:
        out = bytearray()
        for ev in self.ws.receive(data):
            if isinstance(ev, channels.Bytes):
                out += ev.data
            elif isinstance(ev, channels.Closed):
                self.closed = True
        return bytes(out)

    def wrap(self, data: bytes) -> bytes:
        if data:
            self.ws.send_raw(data)
        return self.ws.data_to_send()


class RawWire:
    closed = False

    def unwrap(self, data: bytes) -> bytes:
        return data

    def wrap(self, data: bytes) -> bytes:
        return data


def run_spdy(client_sock: socket.socket, early: bytes, dial: Dial, idle_timeout: float, tunnel: bool) -> None:
    client = pipe.End(client_sock, "client")
    wire: TunnelWire | RawWire = TunnelWire() if tunnel else RawWire()
    st = _Spdy()
    last = time.monotonic()
    began, cpu = last, time.thread_time()
    try:
        if early:
            _spdy_frames(st, wire.unwrap(early), dial)
        while not st.gone and not wire.closed:
            client.write(wire.wrap(st.session.data_to_send()))
            targets = [p.target for p in st.pairs.values() if p.target is not None and not p.done]
            readers = ([client] if not client.eof and not any(t.full for t in targets) else []) + \
                [t for t in targets if not t.eof and not client.full]
            writers = [e for e in [client, *targets] if e.out]
            left = last + idle_timeout - time.monotonic()
            if left <= 0:
                log.info("port-forward idle for %.0f s: ending it", idle_timeout)
                break
            r, w = pipe.wait(readers, writers, min(left, 5.0))
            for e in w:
                e.flush()
            if client.broken:
                break
            if client in r:
                data = client.read_burst()
                if data == b"":
                    break
                if data and _spdy_frames(st, wire.unwrap(data), dial):
                    last = time.monotonic()
            for pair in list(st.pairs.values()):
                t = pair.target
                if t is None or pair.done:
                    continue
                if t in r:
                    data = t.read_burst()
                    if data:
                        last = time.monotonic()
                        st.session.send_data(pair.data_id, data)
                if t.eof or t.broken:
                    _end_pair(st, pair)
                    st.forget(pair)
                elif t.out:
                    t.flush()  # now rather than after another poll
            client.write(wire.wrap(st.session.data_to_send()))
            client.flush()
        client.write(wire.wrap(st.session.data_to_send()))
        client.flush()
    except (spdy.ProtocolError, channels.ProtocolError) as exc:
        log.info("port-forward ended: %s", exc)
    finally:
        log.info("port-forward session of %d connection(s) ended after %.1f s, %.2f s of CPU",
                 st.served + len(st.pairs), time.monotonic() - began, time.thread_time() - cpu)
        for pair in st.pairs.values():
            if pair.target is not None:
                pair.target.close()
        client.sock.setblocking(True)


def _end_pair(st: _Spdy, pair: _Pair) -> None:
    pair.done = True
    if pair.data_id:
        st.session.send_data(pair.data_id, b"", fin=True)
    if pair.error_id:
        st.session.send_data(pair.error_id, b"", fin=True)
    if pair.target is not None:
        pair.target.close()


def _spdy_frames(st: _Spdy, data: bytes, dial: Dial) -> bool:
    """Act on the frames `data` completes; whether any was stream traffic (pings are not: no idle reset)."""
    if not data:
        return False
    active = False
    for frame in st.session.receive(data):
        active = active or isinstance(frame, (spdy.SynStream, spdy.Data))
        if isinstance(frame, spdy.SynStream):
            st.session.send(spdy.SynReply(frame.stream_id))
            kind, port_text = frame.header("streamtype"), frame.header("port")
            key = frame.header("requestid") or str(frame.stream_id if kind == "error" else frame.stream_id - 2)
            if key not in st.pairs and len(st.pairs) >= 2 * MAX_CONNECTIONS:  # halves of pairs never completed
                st.session.send(spdy.RstStream(frame.stream_id, spdy.REFUSED_STREAM))
                continue
            pair = st.pairs.setdefault(key, _Pair(key=key, port=0))
            if kind == "error":
                pair.error_id = frame.stream_id
            elif kind == "data":
                pair.data_id = frame.stream_id
                st.by_data[frame.stream_id] = pair
            else:
                st.session.send(spdy.RstStream(frame.stream_id, spdy.PROTOCOL_ERROR))
                continue
            if kind == "data":
                if sum(1 for p in st.pairs.values() if p.target is not None) >= MAX_CONNECTIONS:
                    pair.done = True
                    if pair.error_id:
                        st.session.send_data(pair.error_id, b"too many connections in this port-forward session "
                                             b"(at most %d)" % MAX_CONNECTIONS, fin=True)
                    st.session.send_data(pair.data_id, b"", fin=True)
                    st.forget(pair)
                    continue
                _connect(st, pair, port_text, dial)
                if pair.done:
                    st.forget(pair)
        elif isinstance(frame, spdy.Data):
            pair_or_none = st.by_data.get(frame.stream_id)
            if pair_or_none is None or pair_or_none.target is None:
                continue
            target = pair_or_none.target
            target.write(frame.data)
            if frame.fin:
                target.shut_after_flush = True
                target.flush()
        elif isinstance(frame, spdy.RstStream):
            pair_or_none = st.by_data.get(frame.stream_id)
            if pair_or_none is not None and not pair_or_none.done:
                pair_or_none.done = True
                if pair_or_none.target is not None:
                    pair_or_none.target.close()
                st.forget(pair_or_none)
        elif isinstance(frame, spdy.GoAway):
            st.gone = True
    return active


def _connect(st: _Spdy, pair: _Pair, port_text: str, dial: Dial) -> None:
    def fail(message: str) -> None:
        pair.done = True
        if pair.error_id:
            st.session.send_data(pair.error_id, message.encode(), fin=True)
        st.session.send_data(pair.data_id, b"", fin=True)

    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        fail(f'invalid port "{port_text}"')
        return
    pair.port = int(port_text)
    try:
        pair.target = pipe.End(dial(pair.port), f"port {pair.port}")
    except OSError as exc:
        fail(f"error forwarding port {pair.port} to pod: {exc}")


def run_channels(client_sock: socket.socket, early: bytes, ports: tuple[int, ...], dial: Dial,
                 idle_timeout: float) -> None:
    """The v4 channel port-forward: one connection per port in `ports`, opened at once."""
    client = pipe.End(client_sock, "client")
    conn = channels.ChannelConnection(channels.V4)
    targets: list[pipe.End | None] = []
    for i, port in enumerate(ports):
        head = struct.pack("<H", port)
        conn.send(2 * i, head)
        conn.send(2 * i + 1, head)
        try:
            targets.append(pipe.End(dial(port), f"port {port}"))
        except OSError as exc:
            conn.send(2 * i + 1, f"error forwarding port {port} to pod: {exc}".encode())
            targets.append(None)
    last = time.monotonic()
    try:
        if early:
            _channel_input(conn, early, targets)
        while not conn.closed:
            client.write(conn.data_to_send())
            live = [t for t in targets if t is not None and not t.eof]
            if not live and not any(t is not None and t.out for t in targets):
                conn.close(1000)
                break
            readers = ([client] if not client.eof and not any(t.full for t in live) else []) + \
                [t for t in live if not client.full]
            writers = [e for e in [client, *live] if e.out]
            left = last + idle_timeout - time.monotonic()
            if left <= 0:
                conn.close(1000)
                break
            r, w = pipe.wait(readers, writers, min(left, 5.0))
            for e in w:
                e.flush()
            if client.broken:
                return
            if client in r:
                data = client.read_burst()
                if data == b"":
                    return
                if data:
                    active = _channel_input(conn, data, targets)
                    if active is None:
                        return
                    if active:
                        last = time.monotonic()
                    for t in targets:
                        if t is not None and t.out:
                            t.flush()
            for i, t in enumerate(targets):
                if t is not None and t in r:
                    data = t.read_burst()
                    if data:
                        last = time.monotonic()
                        conn.send(2 * i, data)
            client.write(conn.data_to_send())
            client.flush()
        client.write(conn.data_to_send())
        deadline = time.monotonic() + 10.0
        while client.out and not client.broken and time.monotonic() < deadline:
            pipe.wait([], [client], 1.0)
            client.flush()
    except channels.ProtocolError as exc:
        log.info("port-forward ended: %s", exc)
    finally:
        for t in targets:
            if t is not None:
                t.close()
        client.sock.setblocking(True)


def _channel_input(conn: channels.ChannelConnection, data: bytes, targets: list[pipe.End | None]) -> bool | None:
    """Pass channel data on; None when the client closed, else whether any stream data came."""
    active = False
    for ev in conn.receive(data):
        if isinstance(ev, channels.Closed):
            return None
        if isinstance(ev, channels.ChannelData) and ev.channel % 2 == 0 and ev.channel // 2 < len(targets):
            t = targets[ev.channel // 2]
            active = True
            if t is not None:
                t.write(ev.data)
    return active
