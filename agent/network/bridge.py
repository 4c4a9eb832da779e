"""The node side of the pod network: bridge `pikube0`, forwarding, and the route for the service range.

The bridge holds the podCIDR's first address (every pod's gateway) with a MAC
fixed from that address, so the gateway never changes MAC when pods come and go.
Forwarding is switched on in the node's namespace only. Bridge netfilter is what
lets a reply between two pods on the same bridge pass conntrack (needed to un-NAT
a service connection); some kernels lack it, so `ensure_forwarding` reports
whether it is there and the proxy masquerades same-bridge service traffic
instead when it is not.
"""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Interface, IPv4Network
from socket import AF_INET
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from agent.network.ipam import gateway_of
from agent.network.names import BRIDGE, RTPROT_SERVICE, bridge_mac
from agent.network.netns import Netns, iproute, write_sysctl
from agent.network.peers import Route, plan_routes
from agent.network.routes import apply_route_plan, current_routes, link_index, require_link

BRIDGE_NF_SYSCTL = "net.bridge.bridge-nf-call-iptables"


class NetworkSetupError(RuntimeError):
    """The namespace holds something in the way that pikube will not remove by itself."""


def ensure_bridge(netns: Netns | str, pod_cidr: IPv4Network, mtu: int) -> IPv4Interface:
    """Bridge `pikube0` up, with exactly the gateway address of `pod_cidr`; returns that address."""
    gateway = gateway_of(pod_cidr)
    mac = bridge_mac(gateway.ip)
    with iproute(netns) as ipr:
        index = link_index(ipr, BRIDGE)
        if index is None:
            ipr.link("add", ifname=BRIDGE, kind="bridge", address=mac, mtu=mtu)
            index = require_link(ipr, BRIDGE)
        link = ipr.link("get", index=index)[0]
        if link.get(("linkinfo", "kind")) != "bridge":
            kind = link.get(("linkinfo", "kind"))
            raise NetworkSetupError(f"{BRIDGE} exists but is a {kind}, not a bridge")
        changes: dict[str, Any] = {}
        if link.get("address") != mac:
            changes["address"] = mac
        if link.get("mtu") != mtu:
            changes["mtu"] = mtu
        if link.get("state") != "up":
            changes["state"] = "up"
        if changes:
            ipr.link("set", index=index, **changes)
        _ensure_only_address(ipr, index, gateway)
        _bridge_nf_flag(ipr, index)
    return gateway


def _ensure_only_address(ipr: Any, index: int, wanted: IPv4Interface) -> None:
    present = False
    for msg in ipr.addr("dump", index=index, family=AF_INET):
        if msg.get("index") != index:
            continue
        have = IPv4Interface(f"{msg.get('address')}/{msg.get('prefixlen')}")
        if have == wanted:
            present = True
        else:  # an old podCIDR of this node
            ipr.addr("del", index=index, address=str(have.ip), prefixlen=have.network.prefixlen)
    if not present:
        ipr.addr("add", index=index, address=str(wanted.ip), prefixlen=wanted.network.prefixlen)


def _bridge_nf_flag(ipr: Any, index: int) -> None:
    """Also ask this bridge for netfilter calls; harmless (and refused) where the kernel lacks it."""
    with contextlib.suppress(NetlinkError):
        ipr.link("set", index=index, kind="bridge", br_nf_call_iptables=1)


def ensure_forwarding(netns: Netns | str) -> bool:
    """Turn on IPv4 forwarding and bridge netfilter in `netns`; returns whether bridge netfilter exists.

    Raises if forwarding cannot be switched on. A False return means br_netfilter
    is not available: pass it to the proxy, which then masquerades service
    traffic that goes back out of the bridge it came in on.
    """
    if not write_sysctl(netns, "net.ipv4.ip_forward", "1"):
        raise NetworkSetupError("net.ipv4.ip_forward is missing: no IPv4 forwarding in this kernel")
    return write_sysctl(netns, BRIDGE_NF_SYSCTL, "1")


def ensure_service_route(netns: Netns | str, service_cidr: IPv4Network) -> None:
    """Route the service range to the bridge, so the node's own connections to a ClusterIP
    find a route (and reach the nat output hook) even without a default route."""
    with iproute(netns) as ipr:
        index = link_index(ipr, BRIDGE)
        if index is None:
            raise NetworkSetupError(f"{BRIDGE} does not exist: call ensure_bridge first")
        plan = plan_routes(current_routes(ipr, RTPROT_SERVICE), [Route(service_cidr, None, index)])
        apply_route_plan(ipr, plan, RTPROT_SERVICE)


def remove_service_route(netns: Netns | str) -> None:
    """Remove the service range route (if any)."""
    with iproute(netns) as ipr:
        plan = plan_routes(current_routes(ipr, RTPROT_SERVICE), [])
        apply_route_plan(ipr, plan, RTPROT_SERVICE)
