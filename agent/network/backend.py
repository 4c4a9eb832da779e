"""One entry point for both backends, so the agent only says which one the cluster uses.

`ensure_backend` prepares the node (and removes what the other backend left, so a
cluster can switch), `ensure_peers` follows the list of other nodes. Both are
idempotent: the agent calls them on every sync.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from agent.network import hostgw, vxlan
from agent.network.netns import Netns, iproute
from agent.network.peers import Peer
from agent.network.routes import link_of_address
from core import wellknown


class Backend(enum.Enum):
    """How pod traffic crosses between nodes."""

    HOST_GW = "host-gw"
    VXLAN = "vxlan"


@dataclass(frozen=True)
class BackendInfo:
    """The pod MTU to use and, for vxlan, the VTEP MAC to publish as a node annotation."""

    mtu: int
    vtep_mac: str | None = None


VTEP_MAC_ANNOTATION = wellknown.VTEP_MAC_ANNOTATION


def ensure_backend(netns: Netns | str, backend: Backend, node_ip: IPv4Address) -> BackendInfo:
    """Prepare `backend` on the node whose LAN address is `node_ip`."""
    if backend is Backend.VXLAN:
        info = vxlan.ensure_vxlan(netns, node_ip)
        return BackendInfo(info.mtu, info.vtep_mac)
    vxlan.remove_vxlan(netns)
    with iproute(netns) as ipr:
        return BackendInfo(int(link_of_address(ipr, node_ip).get("mtu")))


def ensure_peers(netns: Netns | str, backend: Backend, peers: Iterable[Peer]) -> list[Peer]:
    """Routes (and vxlan entries) for exactly `peers`; returns the peers now reachable."""
    if backend is Backend.VXLAN:
        return vxlan.ensure_vxlan_peers(netns, peers)
    return hostgw.ensure_routes(netns, peers)
