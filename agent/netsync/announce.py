"""Which LoadBalancer pool addresses this board answers ARP for: every agent decides alone, and all agree.

In the address-pool mode the master's servicelb controller gives a LoadBalancer
Service an address from a LAN range that no board holds; one board must answer
ARP for it. As MetalLB's layer-2 speakers do, every agent ranks the candidate
boards by sha256("<node>#<address>") and the first announces: the same inputs
(Nodes and Endpoints, which every agent watches) give the same answer on every
board without them talking, and addresses spread over the boards. Candidates
are the Ready boards, and for `externalTrafficPolicy: Local` only those with a
ready endpoint of the service (a board without one would drop the traffic).
When the announcing board's heartbeats stop, the master marks it NotReady and
the next board in the ranking takes over (agent/network/arp.py sends the
gratuitous ARP).

Addresses that are some board's own InternalIP (the default ServiceLB mode) are
never announced: the board holding them answers as usual.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address
from typing import Any

Obj = dict[str, Any]


def _internal_ip(node: Obj) -> str:
    return next((str(a.get("address")) for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") == "InternalIP"), "")


def _ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def leader(address: IPv4Address, candidates: Iterable[str]) -> str | None:
    """The board that announces `address`: the first of `candidates` by sha256 of "<node>#<address>"."""
    ranked = sorted(candidates, key=lambda node: hashlib.sha256(f"{node}#{address}".encode()).hexdigest())
    return ranked[0] if ranked else None


def announced(services: Iterable[Obj], nodes: Iterable[Obj], endpoints: Mapping[tuple[str, str], Obj],
              me: str) -> set[IPv4Address]:
    """The pool addresses board `me` answers ARP for."""
    node_list = list(nodes)
    own_addresses = {_internal_ip(n) for n in node_list}
    ready = [str(n["metadata"]["name"]) for n in node_list if _ready(n)]
    mine: set[IPv4Address] = set()
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass"):
            continue
        candidates = ready
        if spec.get("externalTrafficPolicy") == "Local":
            meta = svc.get("metadata") or {}
            eps = endpoints.get((str(meta.get("namespace") or ""), str(meta.get("name") or ""))) or {}
            local = {a.get("nodeName") for s in eps.get("subsets") or [] for a in s.get("addresses") or []}
            candidates = [n for n in ready if n in local]
        for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            text = str(ingress.get("ip") or "")
            if not text or text in own_addresses:
                continue
            try:
                address = IPv4Address(text)
            except ValueError:
                continue
            if leader(address, candidates) == me:
                mine.add(address)
    return mine
