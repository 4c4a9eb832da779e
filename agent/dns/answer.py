"""DNS messages in and out (dnslib): a query is parsed, checked, answered from the `Zone` or marked for forwarding.

The rules of the wire that are not about records live here:

* a packet that does not parse gets FORMERR when its header can be read (else
  nothing); a response (QR set) is never answered, so two responders cannot
  ping-pong; opcodes other than QUERY get NOTIMP; one question per query;
* answers from the zone are authoritative (AA), with RA set, TTL 5 s; NXDOMAIN
  and NODATA carry the zone's SOA in the authority section (minimum 5 s, the
  negative TTL);
* EDNS0: a query with an OPT record gets one back (payload 1232, the size
  DNS Flag Day 2020 settled on) and may receive that much over UDP; other UDP
  answers stay within 512 bytes. A bigger answer is cut to its header and
  question with TC set, and the client asks again over TCP.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnslib import (
    CNAME,
    EDNS0,
    OPCODE,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSError,
    DNSHeader,
    DNSRecord,
)

from agent.dns.zone import TTL, Kind, Outcome, Record, Zone

UDP_PLAIN = 512
UDP_EDNS = 1232
_KINDS = {k.value: k for k in Kind}
_SOA_TIMES = (1, 7200, 1800, 86400, TTL)  # serial, refresh, retry, expire, minimum (= negative TTL)


@dataclass(frozen=True)
class Query:
    """A query that parsed and may be answered: the record, the question's name and type."""

    record: DNSRecord
    qname: str
    qtype: str

    @property
    def edns(self) -> bool:
        return any(rr.rtype == QTYPE.OPT for rr in self.record.ar)

    def udp_limit(self) -> int:
        sizes = [rr.edns_len for rr in self.record.ar if rr.rtype == QTYPE.OPT]
        return max(UDP_PLAIN, min(UDP_EDNS, int(sizes[0]))) if sizes else UDP_PLAIN


def _error(data: bytes, rcode: int) -> bytes | None:
    """A bare header answering `data` with `rcode` (None if not even a header can be read, or it is a response)."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    flags = 0x80 | (data[2] & 0x79)  # QR, the query's opcode and RD
    return data[:2] + bytes([flags, 0x80 | rcode]) + b"\x00" * 8


def parse(data: bytes) -> Query | bytes | None:
    """A `Query`, or the error reply to send back, or None when nothing should be sent."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    try:
        record = DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, UnicodeDecodeError):
        return _error(data, RCODE.FORMERR)
    if record.header.opcode != OPCODE.QUERY:
        return _error(data, RCODE.NOTIMP)
    if len(record.questions) != 1:
        return _error(data, RCODE.FORMERR)
    q = record.questions[0]
    if len(q.qname.label) > 127 or sum(len(label) + 1 for label in q.qname.label) > 254:
        return _error(data, RCODE.FORMERR)  # longer than RFC 1035 allows (255 bytes on the wire)
    return Query(record, str(q.qname), QTYPE.get(q.qtype, str(q.qtype)))


def _rdata(record: Record, domain: str) -> object:
    if record.kind is Kind.A:
        return A(record.data)
    if record.kind is Kind.CNAME:
        return CNAME(record.data + ".")
    if record.kind is Kind.PTR:
        return PTR(record.data + ".")
    if record.kind is Kind.TXT:
        return TXT(record.data)
    if record.kind is Kind.SRV:
        prio, weight, port, target = record.data.split(" ")
        return SRV(int(prio), int(weight), int(port), target + ".")
    return _soa(domain)


def _soa(apex: str) -> SOA:
    return SOA(f"ns.dns.{apex}.", f"hostmaster.{apex}.", _SOA_TIMES)


def reply(query: Query) -> DNSRecord:
    """An empty reply to `query`: same id, question and RD; QR and RA set; OPT echoed if it had one."""
    req = query.record
    out = DNSRecord(DNSHeader(id=req.header.id, qr=1, ra=1, rd=req.header.rd), q=req.questions[0])
    if query.edns:
        out.add_ar(EDNS0(udp_len=UDP_EDNS))
    return out


def answer_locally(query: Query, zone: Zone) -> DNSRecord | None:
    """The zone's answer, or None when the name is not ours (forward it)."""
    kind = _KINDS.get(query.qtype)
    if kind is None:  # a type the zone never holds (MX, HINFO…): answer as for a missing type
        kind = Kind.AAAA
    result = zone.lookup(query.qname, kind)
    if result.outcome is Outcome.NOT_OURS:
        return None
    out = reply(query)
    out.header.aa = 1
    asked = query.qname.rstrip(".").lower()
    for record in result.records:
        # The question's own spelling for its own name: resolvers that randomise case (0x20) compare it.
        owner = query.qname if record.name == asked else record.name + "."
        rtype = QTYPE.reverse[record.kind.value]
        out.add_answer(RR(owner, rtype, rdata=_rdata(record, zone.domain), ttl=TTL))
    if result.outcome is Outcome.NXDOMAIN:
        out.header.rcode = RCODE.NXDOMAIN
    if not result.records or result.outcome is Outcome.NXDOMAIN:
        out.add_auth(RR(result.soa_owner + ".", QTYPE.SOA, rdata=_soa(result.soa_owner), ttl=TTL))
    return out


def alias_target(record: DNSRecord, zone: Zone, qtype: str) -> str | None:
    """The target of an answer that is only a CNAME out of the zone (an ExternalName), to be resolved upstream."""
    if qtype in ("CNAME", "ANY") or not record.rr or any(rr.rtype != QTYPE.CNAME for rr in record.rr):
        return None
    target = str(record.rr[-1].rdata).rstrip(".").lower()
    return None if zone.in_zone(target) else target


def chased(record: DNSRecord, upstream_answer: bytes) -> bytes:
    """`record` (a CNAME answer) with the records the upstream gave for its target appended."""
    try:
        extra = DNSRecord.parse(upstream_answer)
    except (DNSError, ValueError, IndexError, UnicodeDecodeError):
        return bytes(record.pack())
    for rr in extra.rr:
        record.add_answer(rr)
    record.header.rcode = extra.header.rcode
    return bytes(record.pack())


def servfail(query: Query) -> bytes:
    out = reply(query)
    out.header.rcode = RCODE.SERVFAIL
    return bytes(out.pack())


def refused(query: Query) -> bytes:
    out = reply(query)
    out.header.rcode = RCODE.REFUSED
    return bytes(out.pack())


def nxdomain(query: Query) -> bytes:
    out = reply(query)
    out.header.rcode = RCODE.NXDOMAIN
    return bytes(out.pack())


def fit(data: bytes, limit: int) -> bytes:
    """`data` as is if it fits `limit` bytes, else its header and question with TC set (the client uses TCP)."""
    if len(data) <= limit:
        return data
    try:
        record = DNSRecord.parse(data)
    except (DNSError, ValueError, IndexError, UnicodeDecodeError):
        return data[:12]
    cut = DNSRecord(DNSHeader(id=record.header.id, qr=1, aa=record.header.aa, ra=record.header.ra,
                              rd=record.header.rd, tc=1, rcode=record.header.rcode), questions=record.questions)
    return bytes(cut.pack())

