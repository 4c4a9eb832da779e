"""The responder's sockets: UDP and TCP port 53 on each of the node's DNS addresses, on threads of their own.

Nothing here waits on the agent's other loops, and they never wait on this: a
busy pod sync cannot stall DNS, a flood of queries cannot stall pod syncs
beyond the CPU it takes. What a client can make it hold is bounded:

* UDP: one thread per address answers the cluster zone inline (a zone answer is
  a dictionary lookup; an identical query seen before is answered from a
  packed copy, valid until the zone changes). Forwarded names go to a pool of
  `forward_workers` threads; at most `max_pending` wait or run there and at most
  `per_client` of them come from one address, the rest get SERVFAIL at once;
* TCP: at most `max_connections` connections, `tcp_per_client` per address
  (more are closed at once), each idle at most `tcp_idle_seconds`, at most
  `tcp_queries` queries per connection (RFC 7766 lets a server close when it likes).

Each address is bound exactly (never 0.0.0.0), so an answer leaves from the
address the pod asked. Only clients `allowed` names are answered (the agent
allows the cluster's pod range and the node's own addresses): a LAN host that
routes to the board cannot use it as an open resolver. `bind(addresses)` may be called again (the bridge's
address can move); listeners no longer wanted are closed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dnslib import DNSRecord

from agent.dns import answer
from agent.dns.forward import Forwarder, LoopGuard
from agent.dns.source import ZoneSource

log = logging.getLogger(__name__)
LOCAL_CACHE_ENTRIES = 4096
# A forwarded answer is resent byte for byte to identical queries this long (its TTLs then are at most
# this much too high); after that the forwarder's cache renders it again with TTLs counted down.
RECENT_SECONDS = 1.0


@dataclass(frozen=True)
class Limits:
    forward_workers: int = 8
    max_pending: int = 256
    per_client: int = 32
    max_connections: int = 32
    tcp_per_client: int = 8
    tcp_idle_seconds: float = 5.0
    tcp_queries: int = 100


UDP_RECEIVE_BUFFER = 1 << 20


class _Listener:
    def __init__(self, address: str, port: int) -> None:
        for _ in range(20 if port == 0 else 1):  # port 0 (tests): retry until the TCP side gets the same port
            try:
                self._open(address, port)
                return
            except OSError:
                if port != 0:
                    raise
        self._open(address, port)

    def _open(self, address: str, port: int) -> None:
        self.address = address
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._big_receive_buffer()
            self.udp.bind((address, port))
            self.tcp.bind((address, self.udp.getsockname()[1]))  # port 0 (tests): the same port for both
            self.tcp.listen(64)
        except OSError:
            self.close()
            raise

    def _big_receive_buffer(self) -> None:
        """Room for a burst of queries while the agent's other threads hold the interpreter: ~1 MiB, not the
        kernel's default ~200 KiB (a few hundred queries' worth), beyond net.core.rmem_max when root."""
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                self.udp.setsockopt(socket.SOL_SOCKET, option, UDP_RECEIVE_BUFFER)
                return
            except OSError:
                continue

    def close(self) -> None:
        for s in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class DnsServer:
    def __init__(self, zone: ZoneSource, forwarder: Forwarder | None, guard: LoopGuard | None = None,
                 port: int = 53, limits: Limits | None = None, allowed: Callable[[str], bool] | None = None) -> None:
        """`allowed(client address)`: whom to answer (default: anyone who reaches the address)."""
        limits = limits or Limits()
        self.allowed = allowed or (lambda _ip: True)
        self.zone, self.forwarder, self.guard, self.port, self.limits = zone, forwarder, guard, port, limits
        self._pool = ThreadPoolExecutor(max_workers=limits.forward_workers, thread_name_prefix="dns-forward")
        self._listeners: dict[str, _Listener] = {}
        self._lock = threading.Lock()
        self._pending = 0
        self._per_client: Counter[str] = Counter()
        self._connections: Counter[str] = Counter()
        # Packed zone answers by exact query (minus id) and the zone generation they came from, replaced as one
        # tuple: a thread still answering from the old zone can never file its answer under the new one.
        self._local: tuple[int, dict[bytes, bytes]] = (-1, {})
        self._recent: dict[bytes, tuple[float, bytes]] = {}  # forwarded answers, as sent, for RECENT_SECONDS
        self._stopped = False
        self._unbound: set[str] = set()
        self.ports: dict[str, int] = {}
        """Where each address listens (the port given, or the one the kernel chose for port 0)."""

    # -- listeners -------------------------------------------------------------------------------

    def bind(self, addresses: list[str]) -> None:
        """Listen on exactly `addresses`; an address that cannot be bound is logged and left out."""
        if self._stopped:
            return
        for address in addresses:
            if address in self._listeners:
                continue
            try:
                listener = _Listener(address, self.port)
            except OSError as exc:
                if address not in self._unbound:  # said once; `bind` is called again every resync
                    log.warning("cluster DNS cannot listen on %s:%d: %s", address, self.port, exc)
                self._unbound.add(address)
                continue
            self._unbound.discard(address)
            self._listeners[address] = listener
            self.ports[address] = listener.udp.getsockname()[1]
            for name, target in (("udp", self._serve_udp), ("tcp", self._serve_tcp)):
                threading.Thread(target=target, args=(listener,), name=f"dns-{name}-{address}", daemon=True).start()
            log.info("cluster DNS listening on %s:%d (UDP and TCP)", address, self.ports[address])
        for address in set(self._listeners) - set(addresses):
            self._listeners.pop(address).close()
            self.ports.pop(address, None)

    def stop(self) -> None:
        self._stopped = True
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- answering -------------------------------------------------------------------------------

    def _local_answer(self, data: bytes, q: answer.Query, limit: int, tag: bytes) -> bytes | None:
        """The zone's answer to `q` cut to `limit` (None: not ours). Identical queries reuse the packed answer."""
        generation, zone = self.zone.current()
        cached_generation, cache = self._local
        if generation != cached_generation or len(cache) >= LOCAL_CACHE_ENTRIES:
            cache = {}
            self._local = (generation, cache)
        key = data[2:] + tag
        hit = cache.get(key)
        if hit is not None:
            return data[:2] + hit
        record = answer.answer_locally(q, zone)
        if record is None:
            return None
        if not self.zone.ready() and zone.in_zone(q.qname.strip(".").lower()):
            return answer.servfail(q)  # not read yet is not "does not exist"
        if self.forwarder is not None and self.forwarder.upstreams and \
                answer.alias_target(record, zone, q.qtype) is not None:
            return None  # an ExternalName: forwarded (`_forward` resolves the target and prepends the alias)
        packed = answer.fit(bytes(record.pack()), limit)
        cache[key] = packed[2:]
        return packed

    def handle(self, data: bytes, limit: int | None) -> tuple[bytes | None, answer.Query | None]:
        """(reply, None) when answered here, (None, query) when it must be forwarded; `limit` None means TCP."""
        tag = b"t" if limit is None else b"u"
        key = data[2:] + tag
        cached_generation, cache = self._local
        hit = cache.get(key) if len(data) >= 12 else None
        if hit is not None and cached_generation == self.zone.current()[0]:
            return data[:2] + hit, None
        recent = self._recent.get(key)
        if recent is not None and time.monotonic() - recent[0] < RECENT_SECONDS:
            return data[:2] + recent[1], None
        parsed = answer.parse(data)
        if not isinstance(parsed, answer.Query):
            return parsed, None
        if self.guard is not None and self.guard.seen(parsed.qname):
            return answer.refused(parsed), None
        size = parsed.udp_limit() if limit is not None else 65535
        local = self._local_answer(data, parsed, size, tag)
        if local is not None:
            return local, None
        if self.forwarder is None or not self.forwarder.upstreams:
            return answer.servfail(parsed), None
        name = parsed.qname.strip(".")
        if name and "." not in name:
            return answer.nxdomain(parsed), None  # a single label is never sent to the internet
        cached = self.forwarder.cached(parsed)
        if cached is not None:  # answered here, without a trip through the forwarding pool
            cached = cached if limit is None else answer.fit(cached, parsed.udp_limit())
            self._remember(key, cached)
            return cached, None
        return None, parsed

    def _remember(self, key: bytes, reply: bytes) -> None:
        if len(self._recent) >= LOCAL_CACHE_ENTRIES:
            self._recent = {}
        self._recent[key] = (time.monotonic(), reply[2:])

    def _forward(self, data: bytes, q: answer.Query, tcp: bool) -> bytes:
        assert self.forwarder is not None
        _, zone = self.zone.current()
        local = answer.answer_locally(q, zone)
        target = answer.alias_target(local, zone, q.qtype) if local is not None else None
        if local is not None and target is not None:  # the alias, then what the upstream says of its target
            follow = DNSRecord.question(target, q.qtype)
            follow_query = answer.parse(bytes(follow.pack()))
            got = None
            if isinstance(follow_query, answer.Query):
                got = self.forwarder.forward(follow_query, bytes(follow.pack()), tcp)
            reply = answer.chased(local, got) if got is not None else bytes(local.pack())
        else:
            reply_or_none = self.forwarder.forward(q, data, tcp)
            if reply_or_none is None:
                return answer.servfail(q)
            reply = reply_or_none
        return reply if tcp else answer.fit(reply, q.udp_limit())

    # -- UDP -------------------------------------------------------------------------------------

    def _serve_udp(self, listener: _Listener) -> None:
        sock = listener.udp
        while not self._stopped:
            try:
                data, client = sock.recvfrom(4096)
            except OSError:
                return
            if client is None or not self.allowed(client[0]):  # None: the socket was shut down
                continue  # not a pod of this cluster nor this node: no answer (and nothing to amplify)
            try:
                reply, query = self.handle(data, answer.UDP_PLAIN)
                if query is not None:
                    reply = self._dispatch(sock, data, query, client)
                if reply is not None:
                    sock.sendto(reply, client)
            except OSError:
                continue
            except Exception:  # a bug must not end the listener; the query goes unanswered
                log.exception("cluster DNS: a query failed")

    def _dispatch(self, sock: socket.socket, data: bytes, q: answer.Query, client: tuple[str, int]) -> bytes | None:
        """Hand a forward to the pool; returns SERVFAIL to send now when the bounds are reached."""
        ip = client[0]
        with self._lock:
            if self._pending >= self.limits.max_pending or self._per_client[ip] >= self.limits.per_client:
                return answer.servfail(q)
            self._pending += 1
            self._per_client[ip] += 1

        def run() -> None:
            try:
                sock.sendto(self._forward(data, q, tcp=False), client)
            except OSError:
                pass
            finally:
                with self._lock:
                    self._pending -= 1
                    self._per_client[ip] -= 1
                    if self._per_client[ip] <= 0:
                        del self._per_client[ip]

        try:
            self._pool.submit(run)
        except RuntimeError:  # the pool is shut down: the agent is stopping
            return None
        return None

    # -- TCP -------------------------------------------------------------------------------------

    def _serve_tcp(self, listener: _Listener) -> None:
        while not self._stopped:
            try:
                conn, client = listener.tcp.accept()
            except OSError:
                return
            ip = client[0]
            if not self.allowed(ip):
                conn.close()
                continue
            with self._lock:
                total = sum(self._connections.values())
                if total >= self.limits.max_connections or self._connections[ip] >= self.limits.tcp_per_client:
                    conn.close()
                    continue
                self._connections[ip] += 1
            threading.Thread(target=self._connection, args=(conn, ip), name="dns-tcp-conn", daemon=True).start()

    def _connection(self, conn: socket.socket, ip: str) -> None:
        try:
            conn.settimeout(self.limits.tcp_idle_seconds)
            for _ in range(self.limits.tcp_queries):
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                data = _recv_exact(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                reply, query = self.handle(data, None)
                if query is not None:
                    reply = self._forward(data, query, tcp=True)
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return
        except Exception:
            log.exception("cluster DNS: a TCP query failed")
        finally:
            conn.close()
            with self._lock:
                self._connections[ip] -= 1
                if self._connections[ip] <= 0:
                    del self._connections[ip]


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data

