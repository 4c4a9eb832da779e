"""Names outside the cluster: asked of the board's upstream servers, with a small cache, never in a loop.

* **Upstreams** are the `nameserver` lines of the host's resolv.conf (the
  kubelet's `--resolv-conf`), at most three, minus this responder's own
  addresses (a node whose resolv.conf names the cluster DNS would otherwise ask
  itself forever). A loop through another server (an upstream that forwards
  back here) is found by a probe: `LoopGuard` asks each upstream once for a
  random name of its own; if that name then arrives at this responder, that
  upstream is dropped and the agent logs it (CoreDNS' `loop` plugin does the same).
* **The query is forwarded as it came** (EDNS0 and all) with a fresh random id,
  over the client's protocol. A truncated UDP answer is asked again over TCP;
  the server cuts what does not fit the client's UDP size. The next upstream is
  tried after a timeout (2 s), SERVFAIL or REFUSED.
* **A cache** of at most `CACHE_ENTRIES` answers: positive ones for their
  smallest TTL (at most 30 s), negative ones (NXDOMAIN, NODATA) for the SOA's
  minimum (at most 30 s); handed out with TTLs counted down.
* **Bounded**: at most `max_concurrent` forwards at once; beyond that the
  client gets SERVFAIL at once rather than a queue that grows.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, DNSError, DNSRecord

from agent.dns.answer import Query

log = logging.getLogger(__name__)
CACHE_ENTRIES = 1000
MAX_CACHE_TTL = 30
TIMEOUT = 2.0
MAX_UPSTREAMS = 3
LOOP_SUFFIX = "pikube-loop-probe."


@dataclass(frozen=True)
class _Entry:
    stored: float
    expires: float
    record: DNSRecord


def upstreams_from(resolv_conf: str, own: Iterable[str]) -> list[str]:
    """The `nameserver` addresses of a resolv.conf text, without `own` (this responder's addresses)."""
    mine = set(own)
    found: list[str] = []
    for line in resolv_conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in mine and parts[1] not in found:
            if parts[1] in ("0.0.0.0", "::"):
                continue
            found.append(parts[1])
    return found[:MAX_UPSTREAMS]


def _min_ttl(record: DNSRecord) -> int:
    if record.header.rcode == RCODE.NXDOMAIN or not record.rr:
        soas = [rr for rr in record.auth if rr.rtype == QTYPE.SOA]
        if not soas:
            return 0
        return min(int(soas[0].ttl), int(soas[0].rdata.times[4]))
    return min(int(rr.ttl) for rr in record.rr)


class Forwarder:
    """Asks the upstream servers; `forward(query, data, tcp)` returns the answer's bytes or None (none answered)."""

    def __init__(self, upstreams: list[str], max_concurrent: int = 64, clock: Callable[[], float] = time.monotonic,
                 port: int = 53, timeout: float = TIMEOUT) -> None:
        self.upstreams = list(upstreams)
        self.port, self.timeout = port, timeout
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._cache: OrderedDict[tuple[str, int, int, bool], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def drop(self, upstream: str) -> None:
        self.upstreams = [u for u in self.upstreams if u != upstream]

    # -- cache -----------------------------------------------------------------------------------

    @staticmethod
    def _key(query: Query) -> tuple[str, int, int, bool]:
        q = query.record.questions[0]
        return (query.qname.lower(), int(q.qtype), int(q.qclass), query.edns)

    def cached(self, query: Query) -> bytes | None:
        """A cached answer to `query` (its id, TTLs counted down), or None."""
        key = self._key(query)
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry.expires <= now:
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
        record = DNSRecord.parse(entry.record.pack())  # a copy: the cached one is shared
        record.header.id = query.record.header.id
        record.questions = query.record.questions  # the client's own spelling of the name
        age = int(now - entry.stored)
        for rr in [*record.rr, *record.auth]:
            rr.ttl = max(0, int(rr.ttl) - age)
        return bytes(record.pack())

    def _store(self, query: Query, answer: DNSRecord) -> None:
        if answer.header.tc or answer.header.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
            return
        ttl = min(_min_ttl(answer), MAX_CACHE_TTL)
        if ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            self._cache[self._key(query)] = _Entry(now, now + ttl, answer)
            self._cache.move_to_end(self._key(query))
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)

    # -- asking ----------------------------------------------------------------------------------

    def forward(self, query: Query, data: bytes, tcp: bool) -> bytes | None:
        """Ask the upstreams; None if all failed (or too many forwards run already): the caller says SERVFAIL."""
        hit = self.cached(query)
        if hit is not None:
            return hit
        if not self._slots.acquire(blocking=False):
            return None
        try:
            return self._ask_all(query, data, tcp)
        finally:
            self._slots.release()

    def _ask_all(self, query: Query, data: bytes, tcp: bool) -> bytes | None:
        for upstream in list(self.upstreams):
            qid = secrets.randbits(16)
            out = struct.pack("!H", qid) + data[2:]
            try:
                raw = self._tcp(upstream, out) if tcp else self._udp(upstream, out, qid)
                answer = DNSRecord.parse(raw)
                if answer.header.tc and not tcp:
                    raw = self._tcp(upstream, out)
                    answer = DNSRecord.parse(raw)
            except (OSError, DNSError, ValueError, IndexError, UnicodeDecodeError) as exc:
                log.debug("upstream %s: %s", upstream, exc)
                continue
            if answer.header.id != qid or not answer.questions or \
                    str(answer.questions[0].qname).lower() != query.qname.lower():
                continue
            if answer.header.rcode in (RCODE.SERVFAIL, RCODE.REFUSED):
                continue
            self._store(query, answer)
            return struct.pack("!H", query.record.header.id) + raw[2:]
        return None

    def _udp(self, upstream: str, data: bytes, qid: int) -> bytes:
        with socket.socket(socket.AF_INET6 if ":" in upstream else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(self.timeout)
            s.connect((upstream, self.port))
            s.send(data)
            deadline = time.monotonic() + self.timeout
            while True:  # an answer with another id (a late one, or spoofed) is skipped
                raw = s.recv(65535)
                if len(raw) >= 2 and struct.unpack("!H", raw[:2])[0] == qid:
                    return raw
                if time.monotonic() > deadline:
                    raise TimeoutError("no matching answer")

    def _tcp(self, upstream: str, data: bytes) -> bytes:
        with socket.create_connection((upstream, self.port), timeout=self.timeout) as s:
            s.sendall(struct.pack("!H", len(data)) + data)
            size = struct.unpack("!H", _read(s, 2))[0]
            return _read(s, size)


def _read(s: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = s.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("the upstream closed the connection")
        chunks += chunk
    return chunks


class LoopGuard:
    """Finds upstreams that send our own queries back to us (see the module docstring)."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self._probes: dict[str, str] = {}  # probe name (lower case) -> upstream
        self._lock = threading.Lock()

    def probe(self) -> None:
        """Ask every upstream once for a name only this guard knows (run on a thread of its own)."""
        for upstream in list(self.forwarder.upstreams):
            name = f"{secrets.token_hex(8)}.{LOOP_SUFFIX}"
            with self._lock:
                self._probes[name] = upstream
            record = DNSRecord.question(name, "HINFO")
            data = bytes(record.pack())
            # no answer (or NXDOMAIN) is the healthy case; a loop shows up in `seen`
            with contextlib.suppress(OSError):
                self.forwarder._udp(upstream, data, record.header.id)

    def seen(self, qname: str) -> bool:
        """Whether `qname` is one of our probes (then its upstream loops back here and is dropped)."""
        if not qname.lower().endswith(LOOP_SUFFIX):
            return False
        with self._lock:
            upstream = self._probes.pop(qname.lower(), None)
        if upstream is not None:
            log.warning("DNS forwarding loop: upstream %s sends queries back to this node's DNS; it is no longer "
                        "used", upstream)
            self.forwarder.drop(upstream)
        return True
