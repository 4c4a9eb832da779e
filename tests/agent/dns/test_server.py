"""The responder on real sockets (loopback, a free port): zone answers, wire rules, forwarding, cache, bounds.

The informers are stand-ins holding Services and Endpoints; the upstream is a
small dnslib server on 127.0.0.1 the test runs, so nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSError, DNSRecord

from agent.dns.forward import Forwarder, LoopGuard, upstreams_from
from agent.dns.server import DnsServer, Limits
from agent.dns.source import ZoneSource

Obj = dict[str, Any]


class FakeInformer:
    def __init__(self, items: list[Obj]) -> None:
        self.objs = items
        self.synced = threading.Event()
        self.synced.set()
        self.listeners: list[Any] = []

    def items(self) -> list[Obj]:
        return list(self.objs)

    def add_listener(self, on_change: Any) -> None:
        self.listeners.append(on_change)

    def changed(self) -> None:
        for listener in self.listeners:
            listener("x")


class Upstream:
    """A UDP+TCP DNS server on loopback: `ext.example.` A 192.0.2.7 (TTL 60), NXDOMAIN for the rest."""

    def __init__(self) -> None:
        while True:  # a UDP and a TCP socket on the same free port
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(("127.0.0.1", 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.tcp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(8)
        self.asked: list[str] = []
        self.forward_to: tuple[str, int] | None = None  # set: act as a forwarder (to make a loop)
        self.closed = False
        self.threads = [threading.Thread(target=self._udp, daemon=True),
                        threading.Thread(target=self._tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def answer(self, data: bytes) -> bytes:
        q = DNSRecord.parse(data)
        name = str(q.q.qname)
        self.asked.append(name)
        if self.forward_to is not None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(1)
                s.sendto(data, self.forward_to)
                try:
                    return s.recv(4096)
                except OSError:
                    pass
        r = q.reply()
        if name.lower() == "ext.example.":
            r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=60))
        elif name.lower() == "big.example.":
            for i in range(60):
                r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(f"192.0.2.{i}"), ttl=60))
        else:
            r.header.rcode = RCODE.NXDOMAIN
        return bytes(r.pack())

    def _udp(self) -> None:
        while True:
            try:
                data, client = self.udp.recvfrom(4096)
            except OSError:
                return
            if self.closed:
                return
            try:
                out = self.answer(data)
            except DNSError:  # not a query: a real server drops it too
                continue
            if len(out) > 512:
                cut = DNSRecord.parse(out)
                cut.rr = []
                cut.header.tc = 1
                out = bytes(cut.pack())
            try:
                self.udp.sendto(out, client)
            except OSError:  # closed at the end of the test
                return

    def _tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                size = struct.unpack("!H", conn.recv(2))[0]
                out = self.answer(conn.recv(size))
                conn.sendall(struct.pack("!H", len(out)) + out)

    def close(self) -> None:
        """Stop the server threads before the sockets go: a thread still blocked in recvfrom on a closed
        descriptor would read from whatever socket a later test opens under the same number."""
        self.closed = True
        for sock in (self.udp, self.tcp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recvfrom/accept
        for t in self.threads:
            t.join(5)
        self.udp.close()
        self.tcp.close()


SERVICES = [
    {"metadata": {"name": "web", "namespace": "default"},
     "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
    {"metadata": {"name": "many", "namespace": "default"}, "spec": {"clusterIP": "None"}},
    {"metadata": {"name": "alias", "namespace": "default"}, "spec": {"type": "ExternalName",
                                                                      "externalName": "ext.example"}},
]
ENDPOINTS = [{"metadata": {"name": "many", "namespace": "default"},
              "subsets": [{"addresses": [{"ip": f"10.244.1.{i}"} for i in range(1, 61)]}]}]


class Lab:
    def __init__(self, limits: Limits | None = None) -> None:
        self.upstream = Upstream()
        self.services, self.endpoints = FakeInformer(list(SERVICES)), FakeInformer(list(ENDPOINTS))
        zone = ZoneSource("cluster.local", self.services, self.endpoints, [IPv4Network("10.96.0.0/12")])
        self.forwarder = Forwarder(["127.0.0.1"], port=self.upstream.port, timeout=1.0)
        self.guard = LoopGuard(self.forwarder)
        self.server = DnsServer(zone, self.forwarder, self.guard, port=0, limits=limits)
        self.server.bind(["127.0.0.1"])
        self.addr = ("127.0.0.1", self.server.ports["127.0.0.1"])

    def udp(self, data: bytes, timeout: float = 2.0) -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(data, self.addr)
            return s.recv(65535)

    def ask(self, name: str, qtype: str = "A", edns: bool = False, timeout: float = 2.0) -> DNSRecord:
        q = DNSRecord.question(name, qtype)
        if edns:
            from dnslib import EDNS0
            q.add_ar(EDNS0(udp_len=4096))
        return DNSRecord.parse(self.udp(bytes(q.pack()), timeout))

    def tcp(self, name: str, qtype: str = "A") -> DNSRecord:
        data = bytes(DNSRecord.question(name, qtype).pack())
        with socket.create_connection(self.addr, timeout=3) as s:
            s.sendall(struct.pack("!H", len(data)) + data)
            size = struct.unpack("!H", recv_exact(s, 2))[0]
            return DNSRecord.parse(recv_exact(s, size))

    def close(self) -> None:
        self.server.stop()
        self.upstream.close()


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "closed"
        out += chunk
    return out


@pytest.fixture
def lab() -> Iterator[Lab]:
    one = Lab()
    yield one
    one.close()


def addresses(r: DNSRecord) -> list[str]:
    return sorted(str(rr.rdata) for rr in r.rr if rr.rtype == QTYPE.A)


def test_a_cluster_name_over_udp_and_tcp_keeps_the_askers_spelling(lab: Lab) -> None:
    r = lab.ask("Web.Default.svc.cluster.local")
    assert r.header.aa == 1 and r.header.rcode == RCODE.NOERROR and addresses(r) == ["10.96.0.20"]
    assert str(r.rr[0].rname) == "Web.Default.svc.cluster.local." and r.rr[0].ttl == 5
    assert addresses(lab.tcp("web.default.svc.cluster.local")) == ["10.96.0.20"]


def test_nxdomain_and_nodata_carry_the_soa(lab: Lab) -> None:
    nx = lab.ask("nope.default.svc.cluster.local")
    assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth[0].rtype == QTYPE.SOA and nx.auth[0].rdata.times[4] == 5
    nodata = lab.ask("web.default.svc.cluster.local", "AAAA")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr and nodata.auth[0].rtype == QTYPE.SOA
    assert lab.upstream.asked == []  # the cluster zone is never forwarded


def test_srv_and_ptr(lab: Lab) -> None:
    srv = lab.ask("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert srv.rr[0].rdata.port == 80 and str(srv.rr[0].rdata.target) == "web.default.svc.cluster.local."
    ptr = lab.ask("20.0.96.10.in-addr.arpa", "PTR")
    assert str(ptr.rr[0].rdata) == "web.default.svc.cluster.local."


def test_a_big_answer_is_truncated_over_udp_and_whole_over_tcp_or_with_edns(lab: Lab) -> None:
    plain = lab.ask("many.default.svc.cluster.local")
    assert plain.header.tc == 1 and not plain.rr
    assert len(addresses(lab.tcp("many.default.svc.cluster.local"))) == 60
    edns = lab.ask("many.default.svc.cluster.local", edns=True)
    assert edns.header.tc == 0 and len(addresses(edns)) == 60
    assert any(rr.rtype == QTYPE.OPT for rr in edns.ar)


def test_a_new_service_is_answered_once_the_informer_has_it(lab: Lab) -> None:
    assert lab.ask("new.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    lab.services.objs.append({"metadata": {"name": "new", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.40"}})
    lab.services.changed()
    assert addresses(lab.ask("new.default.svc.cluster.local")) == ["10.96.0.40"]
    lab.services.objs.pop()
    lab.services.changed()
    assert lab.ask("new.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN


def test_other_names_are_forwarded_and_cached(lab: Lab) -> None:
    r = lab.ask("EXT.example")
    assert addresses(r) == ["192.0.2.7"]
    again = lab.ask("ext.example")
    assert addresses(again) == ["192.0.2.7"] and str(again.q.qname) == "ext.example."
    assert lab.upstream.asked == ["EXT.example."]  # the second came from the cache
    assert lab.ask("gone.example").header.rcode == RCODE.NXDOMAIN
    assert addresses(lab.tcp("tcp-only.example")) == [] and len(lab.upstream.asked) == 3


def test_an_external_name_is_its_cname_then_the_targets_records(lab: Lab) -> None:
    r = lab.ask("alias.default.svc.cluster.local")
    assert [QTYPE[rr.rtype] for rr in r.rr] == ["CNAME", "A"] and str(r.rr[1].rdata) == "192.0.2.7"
    assert str(r.rr[0].rdata) == "ext.example." and r.rr[1].rname == "ext.example."
    only = lab.ask("alias.default.svc.cluster.local", "CNAME")
    assert [QTYPE[rr.rtype] for rr in only.rr] == ["CNAME"]


def test_a_single_label_is_never_forwarded_and_without_upstreams_only_the_zone_answers(lab: Lab) -> None:
    assert lab.ask("printer").header.rcode == RCODE.NXDOMAIN and lab.upstream.asked == []
    lab.forwarder.upstreams = []
    assert lab.ask("ext.example").header.rcode == RCODE.SERVFAIL
    alias = lab.ask("alias.default.svc.cluster.local")
    assert [QTYPE[rr.rtype] for rr in alias.rr] == ["CNAME"]  # the client resolves the target itself
    assert addresses(lab.ask("web.default.svc.cluster.local")) == ["10.96.0.20"]


def test_a_truncated_upstream_answer_is_asked_again_over_tcp(lab: Lab) -> None:
    r = lab.ask("big.example", edns=True)
    assert len(addresses(r)) == 60
    plain = lab.ask("big.example")
    assert plain.header.tc == 1  # too big for the client's 512 bytes: it must ask over TCP
    assert len(addresses(lab.tcp("big.example"))) == 60


def test_malformed_packets_get_formerr_or_nothing_and_the_server_keeps_answering(lab: Lab) -> None:
    q = bytes(DNSRecord.question("web.default.svc.cluster.local").pack())
    cases = [b"", b"\x00", q[:12], q[:-3], q[:12] + b"\xff" * 40, os.urandom(300),
             q[:2] + b"\x81\x00" + q[4:],  # a response: never answered
             q[:2] + b"\x28\x00" + q[4:]]  # opcode UPDATE
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        for data in cases:
            s.sendto(data, lab.addr)
            try:
                reply = s.recv(4096)
            except TimeoutError:
                continue
            assert reply[:2] == data[:2] and reply[3] & 0x0F in (RCODE.FORMERR, RCODE.NOTIMP, RCODE.NXDOMAIN)
    assert addresses(lab.ask("web.default.svc.cluster.local")) == ["10.96.0.20"]


def raw_query(labels: list[bytes], qid: bytes = b"\x12\x34") -> bytes:
    name = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    return qid + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"


def test_a_127_label_name_is_answered_and_a_longer_one_refused(lab: Lab) -> None:
    inside = [b"a"] * 110 + [b"default", b"svc", b"cluster", b"local"]
    assert DNSRecord.parse(lab.udp(raw_query(inside))).header.rcode == RCODE.NXDOMAIN
    longest = [b"b"] * 126 + [b"x"]  # 127 labels, 255 bytes on the wire: the most a name may have
    reply = DNSRecord.parse(lab.udp(raw_query(longest)))
    assert reply.header.rcode == RCODE.NXDOMAIN and len(reply.q.qname.label) == 127  # forwarded
    too_long = [b"c"] * 128
    assert lab.udp(raw_query(too_long))[3] & 0x0F == RCODE.FORMERR
    assert addresses(lab.ask("web.default.svc.cluster.local")) == ["10.96.0.20"]


def test_a_burst_of_10000_queries_leaves_the_server_answering(lab: Lab) -> None:
    names = ["web.default.svc.cluster.local", "nope.default.svc.cluster.local", "ext.example"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for i in range(10_000):
            q = DNSRecord.question(names[i % 3])
            s.sendto(bytes(q.pack()), lab.addr)
    # A query sent while the socket's queue is still full is dropped, as any UDP server's; a client asks again.
    deadline = time.monotonic() + 10
    while True:
        try:
            assert addresses(lab.ask("web.default.svc.cluster.local", timeout=0.5)) == ["10.96.0.20"]
            break
        except TimeoutError:
            assert time.monotonic() < deadline, "no answer within 10 s of the burst"
    assert addresses(lab.ask("ext.example")) == ["192.0.2.7"]
    # 3,333 asked for ext.example: those sent before the first answer was cached went upstream (one per
    # forwarding thread at most, give or take), the rest came from the cache
    assert len(lab.upstream.asked) < 50, len(lab.upstream.asked)


def test_tcp_connections_are_bounded_per_client() -> None:
    lab = Lab(Limits(max_connections=4, tcp_per_client=2, tcp_idle_seconds=2))
    try:
        held = [socket.create_connection(lab.addr, timeout=3) for _ in range(2)]
        extra = socket.create_connection(lab.addr, timeout=3)
        assert extra.recv(10) == b""  # closed at once
        extra.close()
        for s in held:
            s.close()

        def room() -> bool:
            try:
                return bool(addresses(lab.tcp("web.default.svc.cluster.local")))
            except (AssertionError, OSError):
                return False

        deadline = time.monotonic() + 5
        while not room():
            assert time.monotonic() < deadline, "the closed connections were never counted off"
            time.sleep(0.05)
    finally:
        lab.close()


def test_forwards_are_bounded() -> None:
    lab = Lab(Limits(forward_workers=1, max_pending=1, per_client=1))
    try:
        lab.upstream.forward_to = ("127.0.0.1", 9)  # the upstream takes ~1 s per answer now
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            for name in ("slow1.example", "slow2.example"):
                s.sendto(bytes(DNSRecord.question(name).pack()), lab.addr)
            first = DNSRecord.parse(s.recv(4096))
        assert first.header.rcode == RCODE.SERVFAIL and str(first.q.qname) == "slow2.example."
    finally:
        lab.close()


def test_an_upstream_that_loops_back_is_dropped(lab: Lab) -> None:
    lab.upstream.forward_to = lab.addr
    lab.guard.probe()
    assert lab.forwarder.upstreams == []
    assert lab.ask("ext.example").header.rcode == RCODE.SERVFAIL


def test_clients_not_allowed_get_no_answer() -> None:
    lab = Lab()
    lab.server.allowed = lambda ip: ip != "127.0.0.1"
    try:
        with pytest.raises(TimeoutError):
            lab.ask("web.default.svc.cluster.local", timeout=0.5)
        with socket.create_connection(lab.addr, timeout=3) as s:
            assert s.recv(10) == b""
    finally:
        lab.close()


def test_own_addresses_are_never_upstreams() -> None:
    text = "nameserver 10.96.0.10\nnameserver 192.0.2.53\nnameserver 10.244.1.1\nnameserver 0.0.0.0\n" \
           "nameserver 192.0.2.54\nnameserver 192.0.2.55\nnameserver 192.0.2.56\n"
    assert upstreams_from(text, ["10.96.0.10", "10.244.1.1"]) == ["192.0.2.53", "192.0.2.54", "192.0.2.55"]
