"""Copy bytes both ways between two connections, on the calling thread, until both ends are done.

After an agent answers `101 Switching Protocols` to exec, attach or
port-forward, the master only relays: every byte from kubectl goes to the
agent and back, as kube-apiserver's upgrade-aware proxy does (the protocols,
SPDY or WebSocket, are spoken by the agent alone). kube-apiserver spends two
goroutines per stream; a Python thread costs ~8 MiB of address space and a
scheduler slot on a 1 GB board, so here one thread — the request's own —
serves both directions with poll(2) over two non-blocking sockets. It sits in
`core` because the agent needs the same: a WebSocket through the proxy
subresources is relayed by the master to the agent and by the agent to the pod.

What the loop guarantees:
- backpressure per direction: at most `BUFFER` bytes wait for a slow reader,
  and the writer's side is not read meanwhile (TCP pushes back on it), while
  the other direction keeps flowing;
- half-close: when one side stops sending (a TLS close_notify, as Go's
  `CloseWrite` sends it) the other side gets a close_notify too once
  everything before it was delivered (`half_close`), and the other direction
  goes on until it ends too. A client that drops TCP without close_notify
  has left for good: OpenSSL fails every later write to it, so the stream
  ends;
- an end within `TICK` of a reset or error on either side, of `stopping`, or
  of `idle_timeout` seconds without a byte in either direction (the kubelet's
  `--streaming-connection-idle-timeout`).

TLS sockets need care with poll: a TLS record may arrive in pieces (a read
then has nothing to return yet) and one receive may leave decrypted bytes in
the TLS object that poll cannot see (`pending()`), so a socket with pending
bytes is read again without waiting.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from enum import Enum

from core import tlsclose as _tls

BUFFER = 256 * 1024  # bytes one direction may hold for a reader that is slow
CHUNK = 64 * 1024
SEND_CHUNK = 64 * 1024  # per send: OpenSSL cuts it into 16 KiB records itself; fewer rounds of the loop
TICK = 0.5  # how often a quiet stream looks at its idle deadline and at `stopping`
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Ending(Enum):
    CLOSED = "closed"  # both sides finished sending and everything was delivered
    BROKEN = "broken"  # a reset or an error on one side
    IDLE = "idle"  # nothing moved for idle_timeout
    STOPPED = "stopped"  # the server is stopping


@dataclass
class _Direction:
    src: socket.socket
    dst: socket.socket
    pending: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the source sent its last byte
    shut: bool = False  # ... and the destination's write half was shut after it
    moved: int = 0

    def flush(self) -> bool:
        """Send what is pending, as far as the destination takes it; False on a broken destination."""
        while self.pending:
            try:
                n = self.dst.send(self.pending[:SEND_CHUNK])
            except _WOULD_BLOCK:
                return True
            except OSError:
                return False
            if n <= 0:
                return True
            del self.pending[:n]
            self.moved += n
        if self.eof and not self.shut:
            self.shut = True
            half_close(self.dst)
        return True

    def fill(self) -> bool:
        """Read what the source has, up to BUFFER pending; False on a broken source."""
        while not self.eof and len(self.pending) < BUFFER:
            try:
                data = self.src.recv(CHUNK)
            except _WOULD_BLOCK:
                return True
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""
            except OSError:
                return False
            if not data:
                self.eof = True
                return True
            self.pending += data
        return True

    @property
    def readable_now(self) -> bool:
        """Decrypted bytes wait inside the TLS object, where poll cannot see them."""
        return not self.eof and len(self.pending) < BUFFER and isinstance(self.src, ssl.SSLSocket) \
            and self.src.pending() > 0


def half_close(sock: socket.socket) -> None:
    """End our sending on `sock` and keep reading from it: a TLS close_notify (what Go's `CloseWrite` sends), or a
    TCP FIN on a plain socket.

    A TCP FIN alone would not do on TLS: OpenSSL 3 takes an EOF without close_notify for a truncation attack
    and fails every later write on that connection, so the peer could not answer. Python has no call for the
    TLS half: `SSLSocket.shutdown` drops the TLS state, `unwrap` waits for the peer's close_notify, and the TLS
    object's own `shutdown` calls OpenSSL's SSL_shutdown a second time at once, which reads — and drops the
    application data it meets (the peer's answer, if it came quickly: seen in tests within milliseconds,
    since Python may wait for the GIL between the two calls). So `_tls.close_notify` calls SSL_shutdown once.
    """
    if isinstance(sock, ssl.SSLSocket):
        _tls.close_notify(sock)
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def relay(client: socket.socket, client_first: bytes, upstream: socket.socket, upstream_first: bytes,
          idle_timeout: float, stopping: threading.Event | None = None) -> Ending:
    """Relay until both directions ended (or one broke, or idle/stopping); `*_first` are bytes already read
    from that side (behind an HTTP head) that go out first. The sockets are left open for the caller."""
    up = _Direction(client, upstream, bytearray(client_first))
    down = _Direction(upstream, client, bytearray(upstream_first))
    for s in (client, upstream):
        s.setblocking(False)
    last = time.monotonic()
    moved = 0
    while True:
        for d in (up, down):
            if not d.flush() or not d.fill() or not d.flush():
                return Ending.BROKEN
        if up.shut and down.shut:
            return Ending.CLOSED
        now = time.monotonic()
        total = up.moved + down.moved + len(up.pending) + len(down.pending)
        if total != moved:
            moved, last = total, now
        elif now - last >= idle_timeout:
            return Ending.IDLE
        if stopping is not None and stopping.is_set():
            return Ending.STOPPED
        if up.readable_now or down.readable_now:
            continue
        masks: dict[int, int] = {}
        for d in (up, down):
            if not d.eof and len(d.pending) < BUFFER:
                masks[d.src.fileno()] = masks.get(d.src.fileno(), 0) | select.POLLIN
            if d.pending:
                masks[d.dst.fileno()] = masks.get(d.dst.fileno(), 0) | select.POLLOUT
        poller = select.poll()
        for fd, mask in masks.items():
            poller.register(fd, mask)
        wait = min(TICK, max(0.0, idle_timeout - (now - last)))
        try:
            events = poller.poll(wait * 1000)
        except OSError:
            return Ending.BROKEN
        if any(ev & (select.POLLERR | select.POLLNVAL) for _, ev in events):
            # Let the reads and writes above meet the error (and deliver what can still be delivered).
            for d in (up, down):
                if not d.fill():
                    return Ending.BROKEN
