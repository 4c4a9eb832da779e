"""Node objects as the pod network's backends see them: the other boards' addresses, podCIDRs and VTEP MACs.

Pure: the sync loop hands over every Node it knows and gets `agent.network.Peer`s
back. A Node that has no InternalIP or no podCIDR yet (a board that is still
joining) is left out until it has both; a vxlan peer without a published VTEP MAC
is kept, and the vxlan backend skips it until the MAC appears.

A Node whose podCIDR overlaps another Node's (this board's own included) is left
out too. The master refuses such a range, so only a store older than that check
can hold one; routing it would send one board's pod traffic to the other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from ipaddress import AddressValueError, IPv4Network, NetmaskValueError
from typing import Any

from agent.network import VTEP_MAC_ANNOTATION, Peer

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def internal_ip(node: Obj) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            return str(address["address"])
    return None


def pod_cidr(node: Obj) -> IPv4Network | None:
    """The node's podCIDR (IPv4), or None if the master has not given it one (or it is not IPv4)."""
    text = (node.get("spec") or {}).get("podCIDR")
    if not text:
        return None
    try:
        return IPv4Network(str(text))
    except (AddressValueError, NetmaskValueError, ValueError):
        return None


def peer_of(node: Obj) -> Peer | None:
    name = str((node.get("metadata") or {}).get("name") or "")
    address, cidr = internal_ip(node), pod_cidr(node)
    if not name or address is None or cidr is None:
        return None
    mac = ((node.get("metadata") or {}).get("annotations") or {}).get(VTEP_MAC_ANNOTATION)
    try:
        return Peer.of(name, address, cidr, str(mac) if mac else None)
    except (AddressValueError, ValueError):
        log.warning("node %s has an address pikube cannot route to: %s", name, address)
        return None


def pod_cidr_clashes(nodes: Iterable[Obj]) -> dict[str, list[str]]:
    """Node name -> the other nodes whose podCIDR overlaps its own (nodes without a range clash with none)."""
    ranges = sorted((str((n.get("metadata") or {}).get("name") or ""), cidr)
                    for n in nodes if (cidr := pod_cidr(n)) is not None)
    clashes: dict[str, list[str]] = {}
    for i, (name, cidr) in enumerate(ranges):
        for other, other_cidr in ranges[i + 1:]:
            if cidr.overlaps(other_cidr):
                clashes.setdefault(name, []).append(other)
                clashes.setdefault(other, []).append(name)
    return clashes


def describe_clashes(nodes: Iterable[Obj]) -> str:
    """One line naming every clash ("" if none), for the agent's log."""
    nodes = list(nodes)
    cidrs = {str((n.get("metadata") or {}).get("name") or ""): pod_cidr(n) for n in nodes}
    return "; ".join(f"{name} {cidrs[name]} overlaps {', '.join(others)}"
                     for name, others in sorted(pod_cidr_clashes(nodes).items()))


def peers_from_nodes(nodes: Iterable[Obj], own_name: str) -> list[Peer]:
    """Every other node that can be routed to and holds a range no other node (nor this one) overlaps, by name."""
    nodes = list(nodes)
    clashes = pod_cidr_clashes(nodes)
    found = []
    for node in nodes:
        name = (node.get("metadata") or {}).get("name")
        if name == own_name or name in clashes:
            continue
        peer = peer_of(node)
        if peer is not None:
            found.append(peer)
    return sorted(found, key=lambda p: p.name)
