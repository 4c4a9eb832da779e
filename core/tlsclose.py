"""Send a TLS close_notify on a Python `SSLSocket` and keep reading from it: the half-close Python's ssl lacks.

OpenSSL's SSL_shutdown sends close_notify and returns 0 on its first call;
reading on (SSL_read) is then still allowed until the peer's close_notify
arrives. Python's `SSLObject.shutdown` always makes a second call at once,
which reads records and drops application data — so a peer that answers our
close_notify quickly loses its answer. This module makes the first call only,
through ctypes on the SSL pointer of Python's `_ssl._SSLSocket`.

Reaching into that object is guarded: the pointer sits right after the object
header and the weak reference to the socket (CPython 3.8 to 3.13 keep this
layout), and it is used only if OpenSSL says it belongs to this very socket
(`SSL_get_fd` equals its file descriptor). Otherwise, or without OpenSSL
symbols, Python's own shutdown is the fallback, with its race.
"""

from __future__ import annotations

import contextlib
import ctypes
import select
import ssl
import time
from typing import Any

_SSL_SENT_SHUTDOWN = 1
_SSL_ERROR_WANT_WRITE = 3
_lib: Any = None
try:
    import _ssl

    _lib = ctypes.CDLL(_ssl.__file__)
    for _name, _args, _res in (("SSL_shutdown", [ctypes.c_void_p], ctypes.c_int),
                               ("SSL_get_fd", [ctypes.c_void_p], ctypes.c_int),
                               ("SSL_get_shutdown", [ctypes.c_void_p], ctypes.c_int),
                               ("SSL_get_error", [ctypes.c_void_p, ctypes.c_int], ctypes.c_int)):
        _fn = getattr(_lib, _name)
        _fn.argtypes, _fn.restype = _args, _res
except (ImportError, OSError, AttributeError):
    _lib = None


def _ssl_pointer(sock: ssl.SSLSocket) -> int | None:
    obj = getattr(sock, "_sslobj", None)
    if _lib is None or obj is None:
        return None
    # PyObject_HEAD (refcount, type), then `PyObject *Socket`, then `SSL *ssl`.
    offset = ctypes.sizeof(ctypes.c_ssize_t) + 2 * ctypes.sizeof(ctypes.c_void_p)
    ptr = ctypes.c_void_p.from_address(id(obj) + offset).value
    if not ptr or _lib.SSL_get_fd(ptr) != sock.fileno():
        return None
    return int(ptr)


def close_notify(sock: ssl.SSLSocket, timeout: float = 5.0) -> None:
    """Send close_notify (once; at most `timeout` seconds for a peer that reads nothing); errors are ignored."""
    ptr = _ssl_pointer(sock)
    if ptr is None:
        _fallback(sock)
        return
    if _lib.SSL_get_shutdown(ptr) & _SSL_SENT_SHUTDOWN:
        return
    deadline = time.monotonic() + timeout
    while True:
        ret = _lib.SSL_shutdown(ptr)
        if ret >= 0:
            return  # 0: sent; 1: the peer's had come before
        if _lib.SSL_get_error(ptr, ret) != _SSL_ERROR_WANT_WRITE:
            return  # WANT_READ: sent, and OpenSSL would now wait for the peer's; anything else: a broken link
        left = deadline - time.monotonic()
        if left <= 0:
            return
        p = select.poll()
        p.register(sock.fileno(), select.POLLOUT)
        p.poll(left * 1000)  # the alert waits in OpenSSL; the next call sends it


def _fallback(sock: ssl.SSLSocket) -> None:
    """Python's own shutdown on a non-blocking socket: close_notify sent, the second step gives up at once."""
    obj = getattr(sock, "_sslobj", None)
    if obj is None:
        return
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        obj.shutdown()
    except (ssl.SSLError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
