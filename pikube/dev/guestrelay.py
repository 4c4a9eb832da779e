"""One guest connection relayed to a host TCP service: the command behind QEMU's `guestfwd=...-cmd:`.

QEMU's guestfwd to a `tcp:` chardev connects to the host once, when QEMU starts,
and serves a single connection; a board dials its master many times (join, the
agent's watches, heartbeats). With `cmd:`, QEMU runs a command per guest
connection with the connection on its stdin and stdout: this is that command.

    python -m pikube.dev.guestrelay HOST PORT
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(host: str, port: int, fd_in: int = 0, fd_out: int = 1) -> None:
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(fd_in, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    guest_open = True
    try:
        while True:
            for key, _ in sel.select():
                if key.fileobj == fd_in:
                    data = os.read(fd_in, 65536)
                    if not data:  # the guest closed its side: pass the end on, keep reading the answer
                        sock.shutdown(socket.SHUT_WR)
                        sel.unregister(fd_in)
                        guest_open = False
                        continue
                    sock.sendall(data)
                else:
                    data = sock.recv(65536)
                    if not data:
                        return
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd_out, view):]
            if not guest_open and not sel.get_map():
                return
    finally:
        sock.close()


def main() -> None:
    relay(sys.argv[1], int(sys.argv[2]))


if __name__ == "__main__":
    main()
