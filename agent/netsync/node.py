"""This board's side of the pod network, set up before the Node is registered and repaired on every full sync.

Order matters: forwarding and the backend come first (and, where Docker
manages iptables, accept rules for the pod network in its `DOCKER-USER`
chain, see `agent.network.dockerfw`), because the vxlan
device's MAC must be published as a Node annotation (`pikube.io/vtep-mac`) when
the Node is registered; the bridge needs the podCIDR, which the master gives the
Node only after it exists. `NodeNetwork` holds what the rest of the agent needs
from this: the namespace, the backend, the pod MTU, the VTEP MAC and whether the
kernel has bridge netfilter.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from agent.network import (
    SELF,
    VTEP_MAC_ANNOTATION,
    Backend,
    Netns,
    ensure_backend,
    ensure_bridge,
    ensure_docker_forward,
    ensure_forwarding,
    ensure_local_address,
)


@dataclass(frozen=True)
class NodeNetwork:
    """The node's network as prepared: where, which backend, the pod MTU and what to publish."""

    netns: Netns
    backend: Backend
    node_ip: IPv4Address
    mtu: int
    vtep_mac: str | None
    bridge_netfilter: bool
    cluster_cidr: IPv4Network
    dns_address: IPv4Address | None = None  # the cluster DNS address, local on `lo` (None: no cluster DNS)

    def annotations(self) -> tuple[tuple[str, str], ...]:
        """Node annotations the other boards need (the VTEP MAC, with vxlan)."""
        return ((VTEP_MAC_ANNOTATION, self.vtep_mac),) if self.vtep_mac else ()

    def bridge(self, pod_cidr: IPv4Network) -> IPv4Interface:
        """Ensure `pikube0` for `pod_cidr`; returns the gateway address."""
        return ensure_bridge(self.netns, pod_cidr, self.mtu)


    def ensure(self) -> None:
        """Again what `prepare` did (a full sync repairs what was changed by hand, or what Docker set up since)."""
        ensure_forwarding(self.netns)
        ensure_backend(self.netns, self.backend, self.node_ip)
        ensure_docker_forward(self.netns, self.cluster_cidr)
        if self.dns_address is not None:
            ensure_local_address(self.netns, self.dns_address)


def prepare(backend: str, node_ip: str, cluster_cidr: str, netns: Netns = SELF, dns_address: str = "") -> NodeNetwork:
    """Forwarding, bridge netfilter, the backend (vxlan device or none), room in Docker's firewall and the
    cluster DNS address (if any) on `lo`."""
    chosen = Backend(backend)
    address = IPv4Address(node_ip)
    bridge_nf = ensure_forwarding(netns)
    info = ensure_backend(netns, chosen, address)
    cidr = IPv4Network(cluster_cidr)
    ensure_docker_forward(netns, cidr)
    dns = IPv4Address(dns_address) if dns_address else None
    if dns is not None:
        ensure_local_address(netns, dns)
    return NodeNetwork(netns, chosen, address, info.mtu, info.vtep_mac, bridge_nf, cidr, dns)
