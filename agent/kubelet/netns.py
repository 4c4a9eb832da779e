"""Sockets that live in a pod's network namespace, for httpGet and tcpSocket probes.

The agent may run in another namespace than the pods (a simulated board does),
and a pod without a pod network is reachable only from inside. A socket stays
in the namespace it was created in, so a short-lived thread enters the pod's
namespace (`setns`), creates the socket and leaves; the caller then connects it
from any thread. Python 3.11 has no `os.setns`, hence ctypes.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import socket
import threading
from typing import Any

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def pid_netns(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def socket_in(netns: str | None, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket in the network namespace at path `netns` (None: the caller's own)."""
    if netns is None:
        return socket.socket(family, kind)
    box: dict[str, Any] = {}

    def enter_and_create() -> None:
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            try:
                target = os.open(netns, os.O_RDONLY)
                try:
                    _setns(target)
                    try:
                        box["sock"] = socket.socket(family, kind)
                    finally:
                        _setns(own)
                finally:
                    os.close(target)
            finally:
                os.close(own)
        except OSError as exc:
            box["error"] = exc

    worker = threading.Thread(target=enter_and_create, name="netns-socket")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    sock: socket.socket = box["sock"]
    return sock


def connect(netns: str | None, host: str, port: int, timeout: float) -> socket.socket:
    sock = socket_in(netns)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class NetnsHTTPConnection(http.client.HTTPConnection):
    """`http.client.HTTPConnection` whose socket is made in `netns`."""

    def __init__(self, netns: str | None, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._netns = netns

    def connect(self) -> None:
        self.sock = connect(self._netns, self.host, self.port, float(self.timeout or 1.0))
