"""pikube.dev.guestrelay: a guest connection on stdin/stdout carried to a host TCP service and back."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading


def test_the_relay_carries_both_directions_and_passes_the_guests_end_on() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        seen: list[bytes] = []

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                while data := conn.recv(100):  # ends only when the relay passes the guest's end on
                    seen.append(data)
                    conn.sendall(data.upper())

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        out = subprocess.run([sys.executable, "-m", "pikube.dev.guestrelay", "127.0.0.1", str(srv.getsockname()[1])],
                             input=b"hello relay", capture_output=True, timeout=30)
        t.join(10)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"HELLO RELAY"
    assert b"".join(seen) == b"hello relay"
    assert not t.is_alive()
