"""The vxlan backend: an overlay for nodes that cannot route each other's podCIDRs directly.

Device `pikube.1` (VNI 1, UDP 8472, flannel's numbers) is bound to the node address
and its underlying link, with learning off: every remote node is described
statically from the Node objects, by three entries per peer --
FDB (its VTEP MAC → its node address), neighbour (its gateway → its VTEP MAC) and
a route (its podCIDR via its gateway, onlink on `pikube.1`). The device's MAC is
derived from the node address, so it is the same after a re-creation and the
published annotation stays true.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from socket import AF_INET
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from agent.network.names import RTPROT_PEER, VXLAN_DEVICE, VXLAN_OVERHEAD, VXLAN_PORT, VXLAN_VNI, vtep_mac
from agent.network.netns import Netns, iproute
from agent.network.peers import (
    Peer,
    plan_entries,
    plan_routes,
    usable_peers,
    vxlan_fdb,
    vxlan_neighbours,
    vxlan_routes,
)
from agent.network.routes import (
    apply_route_plan,
    current_routes,
    link_index,
    link_of_address,
    local_addresses,
)

NUD_PERMANENT = 0x80


@dataclass(frozen=True)
class VxlanInfo:
    """What the rest of the node needs from the device: the MAC to publish and the pod MTU."""

    vtep_mac: str
    mtu: int


def _matches(link: Any, node_ip: IPv4Address, underlay: int, mac: str) -> bool:
    def data(key: str) -> Any:
        return link.get(("linkinfo", "data", key))

    return bool(
        link.get(("linkinfo", "kind")) == "vxlan"
        and data("vxlan_id") == VXLAN_VNI
        and data("vxlan_port") == VXLAN_PORT
        and data("vxlan_local") == str(node_ip)
        and data("vxlan_link") == underlay
        and not data("vxlan_learning")
        and link.get("address") == mac
    )


def ensure_vxlan(netns: Netns | str, node_ip: IPv4Address) -> VxlanInfo:
    """Create or repair `pikube.1` on the link holding `node_ip`; MTU 50 below that link's."""
    mac = vtep_mac(node_ip)
    with iproute(netns) as ipr:
        underlay = link_of_address(ipr, node_ip)
        mtu = int(underlay.get("mtu")) - VXLAN_OVERHEAD
        index = link_index(ipr, VXLAN_DEVICE)
        current = ipr.link("get", index=index)[0] if index is not None else None
        if current is not None and not _matches(current, node_ip, underlay["index"], mac):
            ipr.link("del", index=index)
            index = None
        if index is None:
            ipr.link(
                "add",
                ifname=VXLAN_DEVICE,
                kind="vxlan",
                vxlan_id=VXLAN_VNI,
                vxlan_port=VXLAN_PORT,
                vxlan_local=str(node_ip),
                vxlan_link=underlay["index"],
                vxlan_learning=0,
                address=mac,
                mtu=mtu,
            )
            index = link_index(ipr, VXLAN_DEVICE)
        ipr.link("set", index=index, mtu=mtu, state="up")
    return VxlanInfo(mac, mtu)


def remove_vxlan(netns: Netns | str) -> bool:
    """Delete `pikube.1` (its FDB, neighbours and routes go with it); False if it was absent."""
    with iproute(netns) as ipr:
        index = link_index(ipr, VXLAN_DEVICE)
        if index is None:
            return False
        ipr.link("del", index=index)
        return True


def _current_fdb(ipr: Any, index: int) -> set[tuple[str, IPv4Address]]:
    entries = set()
    for msg in ipr.fdb("dump", ifindex=index):
        dst = msg.get("dst")
        if msg.get("ifindex") == index and dst and msg.get("state", 0) & NUD_PERMANENT:
            entries.add((str(msg.get("lladdr")).lower(), IPv4Address(dst)))
    return entries


def _current_neighbours(ipr: Any, index: int) -> set[tuple[IPv4Address, str]]:
    entries = set()
    for msg in ipr.neigh("dump", ifindex=index, family=AF_INET):
        if msg.get("ifindex") == index and msg.get("state", 0) & NUD_PERMANENT and msg.get("lladdr"):
            entries.add((IPv4Address(msg.get("dst")), str(msg.get("lladdr")).lower()))
    return entries


def ensure_vxlan_peers(netns: Netns | str, peers: Iterable[Peer]) -> list[Peer]:
    """Make FDB, neighbour and route entries exactly those of `peers`; returns the peers wired.

    Peers without a published VTEP MAC yet and this node itself are left out (and
    lose any entries they had). Requires `ensure_vxlan` to have run.
    """
    with iproute(netns) as ipr:
        index = link_index(ipr, VXLAN_DEVICE)
        if index is None:
            raise LookupError(f"{VXLAN_DEVICE} does not exist: call ensure_vxlan first")
        wired = [p for p in usable_peers(peers, local_addresses(ipr)) if p.vtep_mac]
        add_fdb, del_fdb = plan_entries(_current_fdb(ipr, index), vxlan_fdb(wired))
        add_nb, del_nb = plan_entries(_current_neighbours(ipr, index), vxlan_neighbours(wired))
        for fdb_mac, fdb_dst in sorted(del_fdb):
            _quiet(ipr.fdb, "del", ifindex=index, lladdr=fdb_mac, dst=str(fdb_dst))
        for nb_ip, nb_mac in sorted(del_nb):
            _quiet(ipr.neigh, "del", ifindex=index, dst=str(nb_ip), lladdr=nb_mac, family=AF_INET)
        for fdb_mac, fdb_dst in sorted(add_fdb):
            ipr.fdb("append", ifindex=index, lladdr=fdb_mac, dst=str(fdb_dst))
        for nb_ip, nb_mac in sorted(add_nb):
            ipr.neigh(
                "replace", ifindex=index, dst=str(nb_ip), lladdr=nb_mac, state=NUD_PERMANENT, family=AF_INET
            )
        plan = plan_routes(current_routes(ipr, RTPROT_PEER), vxlan_routes(wired, index))
        apply_route_plan(ipr, plan, RTPROT_PEER)
    return wired


def _quiet(call: Any, *args: Any, **kwargs: Any) -> None:
    """A delete that is fine with the entry being gone already."""
    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (2, 3):  # ENOENT, ESRCH
            raise
