"""The cluster DNS as the agent starts it: zone from the informers, forwarder from the host's resolv.conf, sockets.

The addresses are the node's cluster DNS address (the `kube-dns` Service's IP,
put on `lo` by the pod network, see `agent.network.localaddr`) and the pod
bridge's address; both are local, so pods reach them without DNAT and the
answer leaves from the address they asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from agent.dns.forward import Forwarder, LoopGuard, upstreams_from
from agent.dns.server import DnsServer, Limits
from agent.dns.source import Watched, ZoneSource

log = logging.getLogger(__name__)


class ClusterDns:
    def __init__(self, domain: str, services: Watched, endpoints: Watched, resolv_conf: Path,
                 own_addresses: list[str], reverse_ranges: list[IPv4Network], clients: list[IPv4Network],
                 port: int = 53, limits: Limits | None = None) -> None:
        """`clients`: the networks whose hosts are answered (the pod range and the node's own addresses)."""
        self.zone = ZoneSource(domain, services, endpoints, reverse_ranges)
        try:
            text = resolv_conf.read_text(errors="replace")
        except OSError as exc:
            log.warning("cluster DNS: cannot read %s (%s); names outside the cluster get SERVFAIL", resolv_conf, exc)
            text = ""
        upstreams = upstreams_from(text, own_addresses)
        self.forwarder = Forwarder(upstreams)
        self.guard = LoopGuard(self.forwarder)
        allowed = [*clients, IPv4Network("127.0.0.0/8")]

        def answered(ip: str) -> bool:
            try:
                address = IPv4Address(ip)
            except ValueError:
                return False
            return any(address in net for net in allowed)

        self.server = DnsServer(self.zone, self.forwarder, self.guard, port, limits, answered)
        log.info("cluster DNS for %s; other names go to %s", domain, ", ".join(upstreams) or "nobody")

    def start(self, addresses: list[str], spawn: Callable[..., None]) -> None:
        self.server.bind(addresses)
        if self.forwarder.upstreams:
            spawn("dns-loop-probe", self.guard.probe)

    def bind(self, addresses: list[str]) -> None:
        """Listen on exactly `addresses` (nothing happens when they are the ones already bound)."""
        self.server.bind(addresses)

    def stop(self) -> None:
        self.server.stop()
