"""The master's stream relay (core/relay.py): what one relayed TLS stream costs against a direct TLS connection.

Every exec, attach and port-forward byte crosses the master twice (decrypt from
kubectl, encrypt to the agent) on one thread per stream. This measures, in one
run on loopback, a bulk transfer over a direct TLS connection and over
client → [relay] → server (two TLS connections and the poll loop between them),
one way, and prints the throughput ratio relayed / direct (the issue's
port-forward target is at least half of a direct connection) and the relay thread's CPU
seconds per GB. Best of `--rounds`.

    .venv/bin/python -m bench.relay [--megabytes 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

from core import relay
from master.pki import ensure_pki

CHUNK = 256 * 1024


def contexts(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    pki = ensure_pki(tmp / "pki", ["localhost"], ["127.0.0.1"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


def tls_pair(ctxs: tuple[ssl.SSLContext, ssl.SSLContext]) -> tuple[ssl.SSLSocket, ssl.SSLSocket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        raw_client = socket.create_connection(listener.getsockname())
        raw_server, _ = listener.accept()
    for s in (raw_client, raw_server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    done: dict[str, ssl.SSLSocket] = {}
    t = threading.Thread(target=lambda: done.setdefault("s", ctxs[0].wrap_socket(raw_server, server_side=True)))
    t.start()
    client = ctxs[1].wrap_socket(raw_client)
    t.join()
    return client, done["s"]


def transfer(sender: ssl.SSLSocket, receiver: ssl.SSLSocket, total: int) -> float:
    """Seconds to move `total` bytes from `sender` to `receiver` (each in its own thread)."""
    block = os.urandom(CHUNK)

    def send() -> None:
        left = total
        while left:
            n = min(left, CHUNK)
            sender.sendall(block[:n])
            left -= n

    start = time.perf_counter()
    t = threading.Thread(target=send)
    t.start()
    got = 0
    while got < total:
        data = receiver.recv(CHUNK)
        if not data:
            raise RuntimeError(f"the stream ended after {got} of {total} bytes")
        got += len(data)
    t.join()
    return time.perf_counter() - start


def direct(ctxs: tuple[ssl.SSLContext, ssl.SSLContext], total: int) -> float:
    a, b = tls_pair(ctxs)
    try:
        return transfer(a, b, total)
    finally:
        a.close()
        b.close()


def relayed(ctxs: tuple[ssl.SSLContext, ssl.SSLContext], total: int) -> tuple[float, float]:
    """(seconds, relay thread CPU seconds) for `total` bytes through the relay."""
    client, accepted = tls_pair(ctxs)
    upstream, agent = tls_pair(ctxs)
    cpu: list[float] = []

    def run() -> None:
        start = time.thread_time()
        relay.relay(accepted, b"", upstream, b"", 60.0)
        cpu.append(time.thread_time() - start)

    t = threading.Thread(target=run)
    t.start()
    try:
        seconds = transfer(client, agent, total)
    finally:
        relay.half_close(client)
        relay.half_close(agent)
        t.join(10)
        for s in (client, accepted, upstream, agent):
            s.close()
    return seconds, cpu[0] if cpu else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--megabytes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    total = args.megabytes * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        ctxs = contexts(Path(tmp))
        direct_s = min(direct(ctxs, total) for _ in range(args.rounds))
        runs = [relayed(ctxs, total) for _ in range(args.rounds)]
    relayed_s, cpu_s = min(runs)
    mb = total / 1e6
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"direct TLS:  {mb / direct_s:8.1f} MB/s  ({args.megabytes} MiB, best of {args.rounds})")
    print(f"relayed:     {mb / relayed_s:8.1f} MB/s  (relay thread CPU {cpu_s / (total / 1e9):.2f} s per GB)")
    print(f"ratio relayed / direct: {direct_s / relayed_s:.2f}  (port-forward target >= 0.5)")


if __name__ == "__main__":
    main()
