"""Other nodes as the backends see them, and the pure diffing that turns them into netlink work.

A backend is told the full list of peers every time (level-driven): this module
computes what the routes and vxlan entries should be and what differs from what
the kernel holds now, without touching the kernel, so the planning is unit-tested
and the netlink modules only execute a plan.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TypeVar


@dataclass(frozen=True)
class Peer:
    """Another node: its name, LAN address, podCIDR and (vxlan) published VTEP MAC."""

    name: str
    node_ip: IPv4Address
    pod_cidr: IPv4Network
    vtep_mac: str | None = None

    @classmethod
    def of(
        cls, name: str, node_ip: str | IPv4Address, pod_cidr: str | IPv4Network, vtep_mac: str | None = None
    ) -> Peer:
        """Build a peer from the strings found on a Node object."""
        mac = vtep_mac.lower() if vtep_mac else None
        return cls(name, IPv4Address(node_ip), IPv4Network(pod_cidr), mac)

    @property
    def gateway(self) -> IPv4Address:
        """The peer's bridge address (first address of its podCIDR), the vxlan next hop."""
        return self.pod_cidr.network_address + 1


@dataclass(frozen=True)
class Route:
    """A route pikube owns: `dst` via `gateway` (onlink or not), optionally pinned to `oif`."""

    dst: IPv4Network
    gateway: IPv4Address | None = None
    oif: int | None = field(default=None, compare=False)
    onlink: bool = False

    def satisfies(self, wanted: Route) -> bool:
        """Whether this (current) route already is `wanted`; an unpinned `wanted.oif` matches any."""
        return (
            self.dst == wanted.dst
            and self.gateway == wanted.gateway
            and self.onlink == wanted.onlink
            and (wanted.oif is None or self.oif == wanted.oif)
        )


@dataclass(frozen=True)
class RoutePlan:
    """Routes to replace (add or change) and to delete."""

    replace: tuple[Route, ...]
    delete: tuple[Route, ...]

    @property
    def empty(self) -> bool:
        return not self.replace and not self.delete


def plan_routes(current: Iterable[Route], desired: Iterable[Route]) -> RoutePlan:
    """Turn `current` owned routes into `desired`: one route per destination, extras deleted."""
    wanted = {route.dst: route for route in desired}
    replace: list[Route] = []
    delete: list[Route] = []
    satisfied: set[IPv4Network] = set()
    for route in current:
        goal = wanted.get(route.dst)
        if goal is not None and route.satisfies(goal) and route.dst not in satisfied:
            satisfied.add(route.dst)
        elif goal is None or route.dst in satisfied:
            delete.append(route)
    for dst, goal in wanted.items():
        if dst not in satisfied:
            replace.append(goal)
    return RoutePlan(tuple(sorted(replace, key=_route_key)), tuple(sorted(delete, key=_route_key)))


def _route_key(route: Route) -> tuple[int, int]:
    return (int(route.dst.network_address), route.dst.prefixlen)


T = TypeVar("T", bound=Hashable)


def plan_entries(current: Iterable[T], desired: Iterable[T]) -> tuple[set[T], set[T]]:
    """(to add, to remove) for sets of table entries such as FDB or neighbour tuples."""
    have, want = set(current), set(desired)
    return want - have, have - want


def usable_peers(peers: Iterable[Peer], local_addresses: Iterable[IPv4Address]) -> list[Peer]:
    """Peers minus this node itself (by address) and every peer whose podCIDR overlaps another's.

    Of two boards claiming one range neither is routed: which one really holds it cannot be told
    from here, and a route to the wrong board would hand it the other's pod traffic.
    """
    local = set(local_addresses)
    others = sorted((p for p in peers if p.node_ip not in local), key=lambda p: p.name)
    return [p for p in others if not any(q is not p and q.pod_cidr.overlaps(p.pod_cidr) for q in others)]


def hostgw_routes(peers: Iterable[Peer]) -> list[Route]:
    """host-gw: each peer's podCIDR via its node address."""
    return [Route(peer.pod_cidr, peer.node_ip) for peer in peers]


def vxlan_routes(peers: Iterable[Peer], vxlan_index: int) -> list[Route]:
    """vxlan: each peer's podCIDR via its gateway, onlink on the vxlan device (peers with a MAC only)."""
    return [Route(p.pod_cidr, p.gateway, vxlan_index, onlink=True) for p in peers if p.vtep_mac]


def vxlan_fdb(peers: Iterable[Peer]) -> set[tuple[str, IPv4Address]]:
    """vxlan: remote VTEP MAC → remote node address."""
    return {(p.vtep_mac, p.node_ip) for p in peers if p.vtep_mac}


def vxlan_neighbours(peers: Iterable[Peer]) -> set[tuple[IPv4Address, str]]:
    """vxlan: remote gateway address → remote VTEP MAC."""
    return {(p.gateway, p.vtep_mac) for p in peers if p.vtep_mac}
