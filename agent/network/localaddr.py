"""The cluster DNS address as a local address of the node: `10.96.0.10/32` on `lo`, so pods reach it without DNAT.

A packet from a pod to the cluster DNS IP leaves the pod by its default route
(the bridge), and the node takes it as its own because the address is local; the
agent's responder is bound to it. No NAT, no conntrack entry rewritten, hence
none of the UDP DNAT races (glibc's parallel A/AAAA from one socket) that
NodeLocal DNSCache was made to avoid. `lo` rather than the bridge, because
`ensure_bridge` keeps exactly one address (the pods' gateway) on `pikube0`; and
not a dummy interface, because kernels without the `dummy` link kind exist (this
machine's is one). The address has **scope host**: it is still a local
address for packets arriving on any interface, but the kernel never picks it as
the source of traffic leaving the node (with scope global on `lo` it did: a
masqueraded NodePort connection to another board over vxlan left from
10.96.0.10, and the answer went to that board's own DNS address). It is marked
with the label `lo:pkdns` so teardown removes only what pikube added.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from socket import AF_INET
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from agent.network.netns import Netns, iproute
from agent.network.routes import require_link

LABEL = "lo:pkdns"
SCOPE_HOST = 254  # RT_SCOPE_HOST


def _ours(ipr: Any, index: int) -> dict[str, int]:
    """Our addresses on `lo` and their scopes."""
    found = {}
    for msg in ipr.addr("dump", index=index, family=AF_INET):
        if msg.get("label") == LABEL:
            found[str(msg.get("address"))] = int(msg.get("scope") or 0)
    return found


def ensure_local_address(netns: Netns | str, address: IPv4Address) -> None:
    """Exactly `address`/32, scope host, labelled `lo:pkdns` on `lo` (another address of ours is removed)."""
    with iproute(netns) as ipr:
        index = require_link(ipr, "lo")
        have = _ours(ipr, index)
        for other, scope in have.items():
            if other != str(address) or scope != SCOPE_HOST:
                ipr.addr("del", index=index, address=other, prefixlen=32)
        if have.get(str(address)) != SCOPE_HOST:
            try:
                ipr.addr("add", index=index, address=str(address), prefixlen=32, label=LABEL, scope=SCOPE_HOST)
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: someone put it there without our label; it serves as well
                    raise


def remove_local_address(netns: Netns | str) -> None:
    """Remove the address `ensure_local_address` added (safe to repeat)."""
    with iproute(netns) as ipr:
        index = require_link(ipr, "lo")
        for other in _ours(ipr, index):
            try:
                ipr.addr("del", index=index, address=other, prefixlen=32)
            except NetlinkError as exc:
                if exc.code != 99:  # EADDRNOTAVAIL: gone meanwhile
                    raise
