"""One exec or attach session: the client's stream and Docker's hijacked connection, copied on one thread.

Order of events, as the kubelet's: wait (30 s at most) until the client has
opened every stream it will use (SPDY; WebSocket is ready at once), start the
Docker side, then copy both ways: stdin to Docker (its end becomes a
`shutdown(SHUT_WR)`), Docker's output (demultiplexed unless there is a TTY) to
stdout/stderr, terminal sizes to Docker's resize. When Docker's stream ends, the
exit code becomes the error channel's Status, everything is flushed and the
client's stream is closed; when the client leaves, Docker's connection is
closed at once. A session with no stream data either way for `idle_timeout`
ends (kubectl's pings every 5 s do not count, as with the kubelet).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.streams import engine, pipe
from agent.streams.transports import Input, SpdyTransport, WebSocketTransport
from core.streams import channels, spdy

log = logging.getLogger(__name__)
STREAMS_TIMEOUT = 30.0  # the kubelet's wait for a SPDY client's streams
FLUSH_TIMEOUT = 10.0  # the final flush to a client that reads nothing
LINGER = 2.0  # after the last byte: how long the client's leftover input is drained before the close


class SessionError(Exception):
    """Docker could not start the command; the message goes to the client as a Status."""


@dataclass
class DockerSide:
    """A started exec or attach: its stream, and how to resize it and learn its exit code."""

    hijacked: engine.Hijacked
    tty: bool
    resize: Callable[[int, int], None]
    exit_code: Callable[[], int | None]  # None: no exit code (attach)
    stdin: bool = True


Transport = WebSocketTransport | SpdyTransport


@dataclass
class _State:
    inputs: list[Input] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)


def run(client_sock: socket.socket, early: bytes, transport: Transport, start: Callable[[], DockerSide],
        idle_timeout: float) -> None:
    """Serve the session until it ends; returns with every socket it opened closed."""
    client = pipe.End(client_sock, "client")
    state = _State()
    try:
        if early:
            state.inputs += transport.receive(early)
        if not _wait_ready(client, transport, state):
            return
        if any(i.kind == "gone" for i in state.inputs):
            return
        try:
            side = start()
        except (SessionError, engine.EngineError, OSError) as exc:
            transport.finish(channels.failure_status(str(exc)))
            _flush(client, transport)
            return
        try:
            _copy(client, side, transport, state, idle_timeout)
        finally:
            side.hijacked.sock.close()
    except (spdy.ProtocolError, channels.ProtocolError) as exc:
        log.info("stream ended: %s", exc)
    finally:
        client.sock.setblocking(True)


def _wait_ready(client: pipe.End, transport: Transport, state: _State) -> bool:
    deadline = time.monotonic() + STREAMS_TIMEOUT
    while not transport.ready:
        client.write(transport.data_to_send())
        left = deadline - time.monotonic()
        if left <= 0 or client.eof or client.broken:
            return False
        r, w = pipe.wait([client], [client] if client.out else [], min(left, 1.0))
        if w:
            client.flush()
        if r:
            data = client.read()
            if data is not None:
                state.inputs += transport.receive(data)
                if not data:
                    return False
    client.write(transport.data_to_send())
    client.flush()
    return True


def _apply(inp: Input, docker: pipe.End, side: DockerSide) -> bool:
    """Pass one client input on; False when the client is gone."""
    if inp.kind == "gone":
        return False
    if inp.kind == "stdin" and side.stdin:
        docker.write(inp.data)
    elif inp.kind == "stdin-closed" and side.stdin:
        docker.shut_after_flush = True
        docker.flush()
    elif inp.kind == "resize":
        try:
            side.resize(*inp.size)
        except Exception as exc:  # a resize that fails (the process just ended) changes nothing else
            log.debug("resize failed: %s", exc)
    return True


def _copy(client: pipe.End, side: DockerSide, transport: Transport, state: _State, idle_timeout: float) -> None:
    docker = pipe.End(side.hijacked.sock, "docker")
    demux = None if side.tty else engine.Demux(transport.output)

    def from_docker(data: bytes) -> None:
        if demux is None:
            transport.output(channels.STDOUT, data)
        else:
            demux.feed(data)

    if side.hijacked.early:
        from_docker(side.hijacked.early)
    for inp in state.inputs:
        if not _apply(inp, docker, side):
            return
    while True:
        client.write(transport.data_to_send())
        if docker.eof:
            break
        readers = [e for e, peer in ((client, docker), (docker, client)) if not e.eof and not peer.full]
        writers = [e for e in (client, docker) if e.out]
        left = state.last + idle_timeout - time.monotonic()
        if left <= 0:
            log.info("stream idle for %.0f s: ending it", idle_timeout)
            transport.finish(channels.failure_status("stream idle timeout", "Timeout", 504))
            _flush(client, transport)
            return
        r, w = pipe.wait(readers, writers, min(left, 5.0))
        for e in w:
            e.flush()
        if client.broken:
            return
        # docker.broken: the process stopped reading its stdin (or ended); what it wrote and its exit code still come
        if client in r:
            data = client.read_burst()
            if data is not None:
                for inp in transport.receive(data):
                    if inp.kind != "gone":  # stream data; pings and other protocol chatter do not count
                        state.last = time.monotonic()
                    if not _apply(inp, docker, side):
                        return
        if docker in r:
            data = docker.read_burst()
            if data:
                state.last = time.monotonic()
                from_docker(data)
                client.write(transport.data_to_send())
                client.flush()  # now rather than after another poll
        if docker.out:
            docker.flush()
    try:
        code = side.exit_code()
    except Exception as exc:  # Docker went away between the output's end and the inspect
        log.warning("exit code of a stream's command unknown: %s", exc)
        transport.finish(channels.failure_status(f"cannot learn the command's exit code: {exc}"))
    else:
        transport.finish(channels.success_status() if code is None else channels.exit_status(code))
    _flush(client, transport)
    _linger(client)


def _linger(client: pipe.End, seconds: float = LINGER) -> None:
    """Read (and drop) what the client still sends until it closes, for a little while.

    Closing a socket with unread bytes in it makes the kernel send a reset, and
    a reset can destroy the Status and the close frame still in flight to the
    client; a client that was still sending stdin (a command that stopped
    reading it) would then see a broken connection instead of the exit code.
    """
    deadline = time.monotonic() + seconds
    while not client.eof and not client.broken:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        r, _ = pipe.wait([client], [], min(left, 0.5))
        if r and client.read_burst(1 << 20) == b"":
            return


def _flush(client: pipe.End, transport: Transport) -> None:
    """Send everything queued for the client, giving up after FLUSH_TIMEOUT without progress."""
    client.write(transport.data_to_send())
    deadline = time.monotonic() + FLUSH_TIMEOUT
    while client.out and not client.broken and time.monotonic() < deadline:
        before = len(client.out)
        _, w = pipe.wait([], [client], 1.0)
        if w:
            client.flush()
        if len(client.out) < before:
            deadline = time.monotonic() + FLUSH_TIMEOUT
