"""The cluster zone as records: Services and Endpoints in, answers per the Kubernetes DNS specification (1.1.0) out.

Pure (no sockets, no wire format), so each rule of the specification is a unit
test (`tests/agent/dns/test_zone.py`):

* `dns-version.<zone>` TXT "1.1.0";
* a ClusterIP Service: `<svc>.<ns>.svc.<zone>` A <clusterIP>, an SRV
  `_<port>._<proto>.<svc>.<ns>.svc.<zone>` per *named* port, a PTR for the
  cluster IP;
* a headless Service (`clusterIP: None`): an A per *ready* endpoint (none ready:
  the name does not exist), `<hostname>.<svc>.<ns>.svc.<zone>` per endpoint
  hostname (else the endpoint's dashed address stands in for it, as in
  CoreDNS), an SRV per named port and ready endpoint targeting that name, a PTR
  per endpoint address;
* an ExternalName Service: a CNAME to its `externalName`;
* pods (CoreDNS' `pods insecure`): `a-b-c-d.<ns>.pod.<zone>` A a.b.c.d for any
  namespace, with no pod watch.

Names compare case-insensitively. A name that is an ancestor of a record
(`svc.<zone>`, `<ns>.svc.<zone>`, `_tcp.<svc>…`) exists with no records of its
own, so it answers NOERROR with nothing (not NXDOMAIN), as does any existing
name asked for a type it lacks (AAAA on this IPv4-only cluster). `lookup`
returns a `Result` the wire layer (`answer.py`) turns into a message.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

Obj = dict[str, Any]
SCHEMA_VERSION = "1.1.0"
TTL = 5  # CoreDNS' default for the cluster zone; also the negative TTL (the SOA minimum)
REVERSE_SUFFIX = ".in-addr.arpa"


class Kind(enum.Enum):
    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"
    SRV = "SRV"
    PTR = "PTR"
    TXT = "TXT"
    SOA = "SOA"
    NS = "NS"
    ANY = "ANY"


@dataclass(frozen=True)
class Record:
    """One answer: `name` (lower-case, no trailing dot) of `kind` with `data` (an address, a name, a text, or
    for SRV "priority weight port target")."""

    name: str
    kind: Kind
    data: str


class Outcome(enum.Enum):
    ANSWER = "answer"  # records (possibly none: NODATA)
    NXDOMAIN = "nxdomain"
    NOT_OURS = "not-ours"  # outside the zone and the reverse ranges: forward it


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    records: tuple[Record, ...] = ()
    soa_owner: str = ""  # for NODATA and NXDOMAIN: the apex whose SOA goes into the authority section


@dataclass
class _Names:
    records: dict[str, list[Record]] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


def reverse_name(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + REVERSE_SUFFIX


def _ipv4(text: Any) -> str | None:
    try:
        return str(IPv4Address(str(text)))
    except ValueError:
        return None


def _ready_addresses(endpoints: Obj | None) -> list[tuple[str, str, list[Obj]]]:
    """(ip, hostname, the subset's ports) of every ready address."""
    out = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p for p in subset.get("ports") or [] if isinstance(p, dict)]
        for address in subset.get("addresses") or []:
            ip = _ipv4(address.get("ip"))
            if ip is not None:
                out.append((ip, str(address.get("hostname") or "").lower(), ports))
    return out


class Zone:
    """Every record of the cluster zone for one set of Services and Endpoints (build once per change, then read)."""

    def __init__(self, domain: str, services: Iterable[Obj], endpoints: Mapping[tuple[str, str], Obj],
                 reverse_ranges: Iterable[IPv4Network] = ()) -> None:
        self.domain = domain.strip(".").lower()
        self.reverse_ranges = tuple(reverse_ranges)
        self._n = _Names()
        self._add(Record(f"dns-version.{self.domain}", Kind.TXT, SCHEMA_VERSION))
        self._n.existing.add(f"svc.{self.domain}")
        self._n.existing.add(f"pod.{self.domain}")
        for service in services:
            meta = service.get("metadata") or {}
            ns, name = str(meta.get("namespace") or "default").lower(), str(meta.get("name") or "").lower()
            if name:
                self._service(ns, name, service.get("spec") or {}, endpoints.get((ns, name)))

    # -- building --------------------------------------------------------------------------------

    def _add(self, record: Record) -> None:
        self._n.records.setdefault(record.name, []).append(record)
        if record.kind is Kind.PTR:
            return
        name = record.name
        while name != self.domain and "." in name:  # the ancestors inside the zone exist too
            self._n.existing.add(name)
            name = name.split(".", 1)[1]

    def _service(self, ns: str, name: str, spec: Obj, endpoints: Obj | None) -> None:
        base = f"{name}.{ns}.svc.{self.domain}"
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").strip(".").lower()
            if target:
                self._add(Record(base, Kind.CNAME, target))
            return
        cluster_ip = _ipv4(spec.get("clusterIP"))
        if cluster_ip is not None:
            self._add(Record(base, Kind.A, cluster_ip))
            self._add(Record(reverse_name(cluster_ip), Kind.PTR, base))
            for port in spec.get("ports") or []:
                if isinstance(port, dict) and port.get("name") and port.get("port"):
                    proto = str(port.get("protocol") or "TCP").lower()
                    self._add(Record(f"_{str(port['name']).lower()}._{proto}.{base}", Kind.SRV,
                                     f"0 100 {int(port['port'])} {base}"))
            return
        if spec.get("clusterIP") not in ("None", None, ""):
            return  # an address we cannot serve (IPv6): nothing
        ready = _ready_addresses(endpoints)
        weight = max(1, 100 // len(ready)) if ready else 100
        for ip, hostname, ports in ready:
            host = f"{hostname or dashed(ip)}.{base}"
            self._add(Record(base, Kind.A, ip))
            self._add(Record(host, Kind.A, ip))
            self._add(Record(reverse_name(ip), Kind.PTR, host))
            for port in ports:
                if port.get("name") and port.get("port"):
                    proto = str(port.get("protocol") or "TCP").lower()
                    self._add(Record(f"_{str(port['name']).lower()}._{proto}.{base}", Kind.SRV,
                                     f"0 {weight} {int(port['port'])} {host}"))

    # -- reading ---------------------------------------------------------------------------------

    def in_zone(self, name: str) -> bool:
        return name == self.domain or name.endswith("." + self.domain)

    def lookup(self, qname: str, kind: Kind) -> Result:
        """The answer to `qname` (any case, trailing dot or not) of type `kind`."""
        name = qname.strip(".").lower()
        if name.endswith(REVERSE_SUFFIX):
            return self._reverse(name, kind)
        if not self.in_zone(name):
            return Result(Outcome.NOT_OURS)
        if name == self.domain:
            records = (Record(name, Kind.SOA, ""),) if kind in (Kind.SOA, Kind.ANY) else ()
            return Result(Outcome.ANSWER, records, self.domain)
        found = self._n.records.get(name)
        if found is None:
            pod = self._pod(name)
            if pod is not None:
                found = [pod]
        if found is None:
            if name in self._n.existing:
                return Result(Outcome.ANSWER, (), self.domain)
            return Result(Outcome.NXDOMAIN, (), self.domain)
        return Result(Outcome.ANSWER, self._select(found, kind), self.domain)

    def _select(self, found: list[Record], kind: Kind) -> tuple[Record, ...]:
        if kind is Kind.ANY:
            return tuple(found)
        wanted = [r for r in found if r.kind is kind]
        if wanted or kind is Kind.CNAME:
            return tuple(wanted)
        cnames = [r for r in found if r.kind is Kind.CNAME]
        if not cnames:
            return ()
        # An alias answers every type with itself, followed by the target's records if they are ours.
        chased: list[Record] = list(cnames)
        target = self._n.records.get(cnames[0].data)
        if target is not None:
            chased += [r for r in target if r.kind is kind]
        return tuple(chased)

    def _pod(self, name: str) -> Record | None:
        labels = name.split(".")
        if len(labels) != 3 + self.domain.count(".") + 1 or labels[2] != "pod":
            return None
        ip = _ipv4(labels[0].replace("-", ".")) if labels[0].count("-") == 3 else None
        return Record(name, Kind.A, ip) if ip is not None else None

    def _reverse(self, name: str, kind: Kind) -> Result:
        found = self._n.records.get(name)
        if found is not None:
            return Result(Outcome.ANSWER, self._select(found, kind), "in-addr.arpa")
        octets = name[: -len(REVERSE_SUFFIX)].split(".")
        ip = _ipv4(".".join(reversed(octets))) if len(octets) == 4 else None
        if ip is not None and any(IPv4Address(ip) in net for net in self.reverse_ranges):
            return Result(Outcome.NXDOMAIN, (), "in-addr.arpa")
        return Result(Outcome.NOT_OURS)  # someone else's addresses: the upstream servers know them
