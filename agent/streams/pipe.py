"""Non-blocking socket ends with outgoing buffers: what a stream's single thread copies bytes between.

A stream holds one thread, so neither direction may block the other: every
socket is non-blocking, what could not be sent yet waits in the end's buffer,
and a side is only read while the buffer it feeds is below `HIGH_WATER`, which
keeps memory bounded and passes back-pressure through. TLS sockets may hold
decrypted bytes the kernel no longer reports as readable; `pending` says so.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl

HIGH_WATER = 1024 * 1024
READ_SIZE = 256 * 1024
_AGAIN = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class End:
    """One socket of a stream."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        sock.setblocking(False)
        self.out = bytearray()
        self.eof = False  # the peer will send nothing more
        self.broken = False  # a send failed: the peer is gone
        self.shut_after_flush = False
        self._shut = False

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def pending(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket) and not self.eof and self.sock.pending() > 0

    def read(self) -> bytes | None:
        """Bytes now, b"" at end of stream, None when nothing is ready."""
        if self.eof:
            return b""
        try:
            data = self.sock.recv(READ_SIZE)
        except _AGAIN:
            return None
        except (OSError, ValueError):
            data = b""
        if not data:
            self.eof = True
        return data

    def write(self, data: bytes) -> None:
        if data and not self.broken:
            self.out += data

    @property
    def full(self) -> bool:
        return len(self.out) >= HIGH_WATER

    def flush(self) -> None:
        while self.out and not self.broken:
            try:
                n = self.sock.send(self.out[:READ_SIZE])
            except _AGAIN:
                return
            except (OSError, ValueError):
                self.broken = True
                self.out.clear()
                return
            del self.out[:n]
        if not self.out and self.shut_after_flush and not self._shut:
            self._shut = True
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def wait(readers: list[End], writers: list[End], timeout: float) -> tuple[list[End], list[End]]:
    """poll(2) over the ends; an end with TLS bytes pending counts as readable at once."""
    ready = [e for e in readers if e.pending]
    if ready:
        timeout = 0.0
    poll = select.poll()
    ends: dict[int, End] = {}
    try:
        for e in {id(e): e for e in [*readers, *writers]}.values():
            fd = e.fileno()
            ends[fd] = e
            poll.register(fd, (select.POLLIN if e in readers else 0) | (select.POLLOUT if e in writers else 0))
        events = poll.poll(max(0.0, timeout) * 1000)
    except (OSError, ValueError):
        return readers, writers  # a closed socket: the reads and sends will say which
    r, w = list(ready), []
    for fd, ev in events:
        e = ends[fd]
        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and e in readers and e not in r:
            r.append(e)
        if ev & (select.POLLOUT | select.POLLERR | select.POLLHUP) and e in writers:
            w.append(e)
    return r, w
