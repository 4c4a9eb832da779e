"""A Docker socket a test can take away and give back: a unix-socket proxy in front of the session's engine.

Stopping the session's private dockerd would disturb every other test, so an
agent under test is pointed at this proxy instead. `down()` closes the socket and
every connection through it (the agent then finds no engine, as when dockerd
stopped); `hang()` keeps accepting connections but never answers (a stuck
engine); `up()` forwards again (and cuts what the stuck engine held, as
restarting it would). Containers keep running in the real engine
meanwhile, as they do when only dockerd restarts (live-restore) or hangs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse


class DockerProxy:
    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.url = f"unix://{path}"
        self._target = target
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._held: set[socket.socket] = set()  # accepted while hanging, never answered
        self._hanging = False

    # -- control -----------------------------------------------------------------------------------

    def up(self) -> None:
        """Forward every new connection to the engine."""
        with self._lock:
            self._hanging = False
            held, self._held = self._held, set()
        for s in held:
            _close(s)
        with self._lock:
            if self._listener is not None:
                return
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.path))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="docker-proxy", daemon=True).start()

    def down(self) -> None:
        """No engine: the socket is gone and every connection through it is cut."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open | self._held, set()
            self._held = set()
        if listener is not None:
            _close(listener)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for s in sockets:
            _close(s)

    def hang(self) -> None:
        """A stuck engine: connections are accepted, and nothing is ever answered."""
        self.down()
        self.up()
        with self._lock:
            self._hanging = True

    def close(self) -> None:
        self.down()

    # -- forwarding --------------------------------------------------------------------------------

    def _upstream(self) -> socket.socket:
        url = urlparse(self._target)
        if url.scheme in ("unix", "http+unix"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(url.path)
        else:
            s = socket.create_connection((url.hostname or "127.0.0.1", url.port or 2375))
        return s

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed by down()
            with self._lock:
                if self._listener is not listener:
                    _close(conn)
                    return
                hanging = self._hanging
                (self._held if hanging else self._open).add(conn)
            if hanging:
                continue  # held open, never answered, until down() or up()
            try:
                upstream = self._upstream()
            except OSError:
                self._forget(conn)
                continue
            with self._lock:
                self._open.add(upstream)
            pair = (conn, upstream)
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in pair:
            self._forget(s)

    def _forget(self, s: socket.socket) -> None:
        with self._lock:
            self._open.discard(s)
        _close(s)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


def short_socket_dir() -> Path:
    """A directory whose socket paths fit in sun_path whatever pytest's tmp dir is."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="pk-dockerproxy-", dir="/tmp" if os.path.isdir("/tmp") else None))
