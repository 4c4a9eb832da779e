"""Plugging a pod into the node's bridge: one veth pair per pod, `eth0` inside, host end on `pikube0`.

The host end's name comes from the pod id (`names.host_ifname`), so the agent can
find, repair or remove a pod's interface from the id alone, after a restart too.
The inner end is created directly inside the pod's namespace as `eth0` (one
netlink request, so no half-moved interface can be left behind in the node's
namespace). Calling `ensure_pod_interface` again repairs whatever differs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from socket import AF_INET
from typing import Any

from agent.network.names import BRIDGE, POD_IFNAME, host_ifname, is_host_ifname
from agent.network.netns import Netns, iproute, netns_path
from agent.network.routes import link_index, require_link


@dataclass(frozen=True)
class PodInterface:
    """What the agent reports about a plugged pod."""

    host_ifname: str
    address: IPv4Interface
    mac: str


def ensure_pod_interface(
    node_netns: Netns | str,
    pod_netns: Netns | str,
    pod_id: str,
    address: IPv4Interface,
    gateway: IPv4Address,
    mtu: int,
) -> PodInterface:
    """Give the pod `eth0` with `address`, `lo` up and a default route via `gateway`."""
    name = host_ifname(pod_id)
    with iproute(node_netns) as node, iproute(pod_netns) as pod:
        bridge = link_index(node, BRIDGE)
        if bridge is None:
            raise LookupError(f"{BRIDGE} does not exist: call ensure_bridge first")
        host = link_index(node, name)
        inner = link_index(pod, POD_IFNAME)
        if host is not None and (inner is None or pod.link("get", index=inner)[0].get("link") != host):
            node.link("del", index=host)  # a half-made or stale pair: start again
            host = None
        if host is None:
            if inner is not None:
                pod.link("del", index=inner)
            node.link(
                "add",
                ifname=name,
                kind="veth",
                mtu=mtu,
                peer={"ifname": POD_IFNAME, "net_ns_fd": netns_path(pod_netns), "mtu": mtu},
            )
            host = require_link(node, name)
            inner = require_link(pod, POD_IFNAME)
        assert inner is not None  # a kept host end implies a matching eth0 (checked above)
        node.link("set", index=host, master=bridge, mtu=mtu, state="up")
        node.brport("set", index=host, mode=1)  # hairpin: a pod may reach itself via a service
        _configure_inside(pod, inner, address, gateway, mtu)
        mac = str(pod.link("get", index=inner)[0].get("address"))
    return PodInterface(name, address, mac)


def _configure_inside(pod: Any, inner: int, address: IPv4Interface, gateway: IPv4Address, mtu: int) -> None:
    loopback = link_index(pod, "lo")
    if loopback is not None:
        pod.link("set", index=loopback, state="up")
    pod.link("set", index=inner, mtu=mtu, state="up")
    present = False
    for msg in pod.addr("dump", index=inner, family=AF_INET):
        if msg.get("index") != inner:
            continue
        have = IPv4Interface(f"{msg.get('address')}/{msg.get('prefixlen')}")
        if have == address:
            present = True
        else:
            pod.addr("del", index=inner, address=str(have.ip), prefixlen=have.network.prefixlen)
    if not present:
        pod.addr("add", index=inner, address=str(address.ip), prefixlen=address.network.prefixlen)
    pod.route("replace", dst="0.0.0.0/0", gateway=str(gateway), oif=inner, family=AF_INET)


def remove_pod_interface(node_netns: Netns | str, pod_id: str) -> bool:
    """Delete the pod's veth pair (both ends); False if it was already gone."""
    with iproute(node_netns) as node:
        index = link_index(node, host_ifname(pod_id))
        if index is None:
            return False
        node.link("del", index=index)
        return True


def pod_interfaces(node_netns: Netns | str) -> list[str]:
    """Host ends of every pod veth pikube made in the node's namespace."""
    with iproute(node_netns) as node:
        return sorted(
            name for msg in node.link("dump") if is_host_ifname(name := str(msg.get("ifname")))
        )


def prune_pod_interfaces(node_netns: Netns | str, live_pod_ids: Iterable[str]) -> list[str]:
    """Delete the veths of pods not in `live_pod_ids`; returns the host ends removed."""
    keep = {host_ifname(pod_id) for pod_id in live_pod_ids}
    removed = []
    with iproute(node_netns) as node:
        for msg in node.link("dump"):
            name = str(msg.get("ifname"))
            if is_host_ifname(name) and name not in keep:
                node.link("del", index=msg["index"])
                removed.append(name)
    return sorted(removed)
