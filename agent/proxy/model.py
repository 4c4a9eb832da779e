"""The proxy's input, a plain model with no Kubernetes objects in it, so the agent maps
Services and Endpoints onto it once and the renderer stays a pure function."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

TABLE = "pikube"
"""The nftables table (family ip) that holds everything the proxy makes."""

POD_CIDR = IPv4Network("10.244.0.0/16")
SERVICE_CIDR = IPv4Network("10.96.0.0/12")


class Protocol(enum.Enum):
    """Service port protocols the proxy handles."""

    TCP = "tcp"
    UDP = "udp"

    @classmethod
    def parse(cls, text: str) -> Protocol:
        """'TCP' / 'tcp' (as in a Service spec) to the enum."""
        return cls(text.lower())


Endpoint = tuple[IPv4Address, int]


@dataclass(frozen=True)
class ServiceRule:
    """One port of one Service, with its ready endpoints (address, target port)."""

    namespace: str
    name: str
    cluster_ip: IPv4Address | None
    protocol: Protocol
    port: int
    node_port: int | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    affinity_timeout: int | None = None
    """Seconds of `sessionAffinity: ClientIP`; None for no affinity."""
    external_ips: tuple[IPv4Address, ...] = ()
    """`spec.externalIPs` and the LoadBalancer's ingress addresses: served on this port like the ClusterIP."""
    local_only: bool = False
    """`externalTrafficPolicy: Local`: traffic from outside the cluster to a NodePort or an external address
    goes only to this node's endpoints, with the client's address kept (none here: dropped)."""
    local_endpoints: list[Endpoint] = field(default_factory=list)
    """The ready endpoints on this node (what `local_only` traffic may reach)."""

    @property
    def key(self) -> str:
        """Readable, nft-safe identity of this service port, used in chain and set names."""
        return _safe(f"{self.namespace}-{self.name}-{self.protocol.value}-{self.port}")

    def ready_endpoints(self) -> list[Endpoint]:
        """Endpoints without duplicates, in a stable order."""
        return _ordered(self.endpoints)

    def node_endpoints(self) -> list[Endpoint]:
        """This node's ready endpoints, without duplicates, in a stable order."""
        return _ordered(self.local_endpoints)


def _ordered(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    unique = {(IPv4Address(ip), int(port)) for ip, port in endpoints}
    return sorted(unique, key=lambda ep: (int(ep[0]), ep[1]))


@dataclass(frozen=True)
class ProxyConfig:
    """What the proxy needs to know about the node and the cluster."""

    node_addresses: tuple[IPv4Address, ...]
    pod_cidr: IPv4Network = POD_CIDR
    """Cluster-wide pod network (not the node's podCIDR)."""
    service_cidr: IPv4Network = SERVICE_CIDR
    bridge_netfilter: bool = True
    """False where br_netfilter is missing: same-bridge service traffic is then masqueraded."""
    bridge: str = "pikube0"


@dataclass(frozen=True)
class TableObjects:
    """Names of what the table holds now (from `nft -j list table`), so a sync can prune it."""

    chains: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()
    maps: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, chains: Iterable[str] = (), sets: Iterable[str] = (), maps: Iterable[str] = ()
    ) -> TableObjects:
        """From any iterables of names."""
        return cls(frozenset(chains), frozenset(sets), frozenset(maps))


_UNSAFE = re.compile(r"[^a-z0-9.-]")


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text.lower())
