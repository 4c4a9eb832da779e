"""Undoing the pod network on a node (node deleted, `pikube reset`, tests): all pikube made, nothing else.

What "made by pikube" means is defined in `names`: the bridge, the vxlan device,
links named like a pod veth host end, and routes with pikube's protocol numbers;
plus the commented rules of `dockerfw` and the labelled cluster DNS address on `lo` (`localaddr`).
Safe to call on a namespace where none of it exists.
"""

from __future__ import annotations

from agent.network.dockerfw import remove_docker_forward
from agent.network.localaddr import remove_local_address
from agent.network.names import BRIDGE, OWNED_PROTOCOLS, VXLAN_DEVICE, is_host_ifname
from agent.network.netns import Netns, iproute
from agent.network.routes import delete_owned_routes, link_index


def teardown(netns: Netns | str) -> None:
    """Remove pod veths, the bridge, the vxlan device, all routes pikube owns in `netns` and its accept rules in
    Docker's `DOCKER-USER` chain, and the cluster DNS address."""
    with iproute(netns) as ipr:
        for msg in ipr.link("dump"):
            if is_host_ifname(str(msg.get("ifname"))):
                ipr.link("del", index=msg["index"])
        for name in (VXLAN_DEVICE, BRIDGE):
            index = link_index(ipr, name)
            if index is not None:
                ipr.link("del", index=index)
        for proto in sorted(OWNED_PROTOCOLS):
            delete_owned_routes(ipr, proto)
    remove_docker_forward(netns)
    remove_local_address(netns)
