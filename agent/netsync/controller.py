"""The agent's network controller: Nodes, Services and Endpoints in, peer routes and one nftables table out.

Level-driven like the rest of the agent: informers keep every Node, Service and
Endpoints object; any change only kicks the sync loop, and `sync(full)` re-reads
all of it and hands the whole desired state to the libraries (`ensure_peers`,
`proxy.apply`), which converge the kernel. Nothing is written before all three
informers have listed once: an agent that restarts must not install an empty
peer list or service table, even for a moment. Between full resyncs, the kernel
is touched only when the computed peers or rules differ from the last applied.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any

from agent import proxy
from agent.client import ENDPOINTS, NODES, SERVICES, ApiClient
from agent.informer import Informer
from agent.netsync.announce import announced
from agent.netsync.hostports import hostport_rules
from agent.netsync.loop import SyncLoop
from agent.netsync.peers import describe_clashes, peers_from_nodes, pod_cidr
from agent.netsync.podnet import BridgeNetwork
from agent.netsync.services import service_rules
from agent.network import Peer, RouteError, ensure_peers
from agent.network.arp import Announcer
from agent.network.netns import iproute
from agent.network.routes import link_of_address
from core.settings import AgentSettings

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class NetworkSync:
    """Keeps this node's peer routes (or vxlan entries) and service proxy in line with the API."""

    def __init__(self, api: ApiClient, settings: AgentSettings, pods: BridgeNetwork,
                 node_pods: Callable[[], list[Obj]], services: Informer | None = None) -> None:
        """`services`: a services informer the caller runs and shares; otherwise this one runs its own."""
        self.settings, self.pods, self._node_pods = settings, pods, node_pods
        self.node = pods.node
        self.loop = SyncLoop(self.sync, settings.network_debounce_seconds, settings.network_resync_seconds)
        self.nodes = Informer(api, NODES, lambda _key: self.loop.kick())
        self._own_services = services is None
        if services is None:
            services = Informer(api, SERVICES, lambda _key: self.loop.kick())
        else:
            services.add_listener(lambda _key: self.loop.kick())
        self.services = services
        self.endpoints = Informer(api, ENDPOINTS, lambda _key: self.loop.kick())
        self.config = proxy.ProxyConfig(node_addresses=(self.node.node_ip,),
                                        pod_cidr=IPv4Network(settings.cluster_cidr),
                                        service_cidr=IPv4Network(settings.service_cidr),
                                        bridge_netfilter=self.node.bridge_netfilter)
        self._peers: list[Peer] | None = None
        self._clashes = ""  # the podCIDR clashes last logged
        self._rules: list[proxy.ServiceRule] | None = None
        self._announcer: Announcer | None = None  # made when there is a pool address to answer ARP for
        self.synced = threading.Event()
        """Set after the first sync that saw every informer listed."""

    def start(self, spawn: Callable[..., None], stop: threading.Event) -> None:
        """Run the informers and the loop on threads made by `spawn(name, target, *args)`."""
        for informer in (self.nodes, self.services, self.endpoints):
            if informer is self.services and not self._own_services:
                continue
            spawn(f"{informer.resource.plural}-watch", informer.run, stop)
        spawn("network-sync", self.loop.run)

    def stop(self) -> None:
        self.loop.stop()
        if self._announcer is not None:
            self._announcer.stop()

    def kick(self) -> None:
        self.loop.kick()

    def sync(self, full: bool) -> None:
        if not all(i.synced.is_set() for i in (self.nodes, self.services, self.endpoints)):
            return  # each informer kicks again once it has listed
        if full:
            self._repair()
        self._follow_own_node()
        self._sync_peers(full)
        self._sync_services(full)
        if not self.synced.is_set():
            log.info("network in sync: %s backend, %d peers, %d service ports", self.node.backend.value,
                     len(self._peers or []), len(self._rules or []))
            self.synced.set()

    def _repair(self) -> None:
        self.node.ensure()
        self.pods.repair()

    def _follow_own_node(self) -> None:
        own = self.nodes.get("", self.settings.node_name)
        cidr = pod_cidr(own) if own is not None else None
        if cidr is not None and self.pods.retarget(cidr):
            log.warning("node %s now has podCIDR %s; pods started before keep their old addresses until they "
                        "are replaced", self.settings.node_name, cidr)

    def _sync_peers(self, full: bool) -> None:
        nodes = self.nodes.items()
        clashes = describe_clashes(nodes)
        if clashes != self._clashes:
            if clashes:
                log.warning("podCIDR clash, no route to these nodes until it is resolved: %s", clashes)
            else:
                log.info("podCIDR clashes resolved")
            self._clashes = clashes
        peers = peers_from_nodes(nodes, self.settings.node_name)
        if not full and peers == self._peers:
            return
        try:
            wired = ensure_peers(self.node.netns, self.node.backend, peers)
        except RouteError as exc:  # the other peers are wired; the next full sync tries these again
            log.warning("some peers cannot be routed: %s", exc)
            wired = peers
        if peers != self._peers:
            log.info("peers: %s", ", ".join(f"{p.name} {p.pod_cidr} via {p.node_ip}" for p in wired) or "none")
        self._peers = peers

    def _sync_services(self, full: bool) -> None:
        endpoints = {((o.get("metadata") or {}).get("namespace", ""), (o.get("metadata") or {}).get("name", "")): o
                     for o in self.endpoints.items()}
        self._announce(endpoints)
        rules = service_rules(self.services.items(), endpoints, self.settings.node_name,
                              local=self.node.dns_address)
        rules += hostport_rules(self._node_pods(), self.pods.address)
        if not full and rules == self._rules:
            return
        proxy.apply(self.node.netns, rules, self.config)
        if rules != self._rules:
            log.debug("proxy: %d service ports applied", len(rules))
        self._rules = rules

    def _announce(self, endpoints: dict[tuple[str, str], Obj]) -> None:
        """Answer ARP for the LoadBalancer pool addresses this board leads (agent/netsync/announce.py)."""
        mine = announced(self.services.items(), self.nodes.items(), endpoints, self.settings.node_name)
        if self._announcer is None:
            if not mine:
                return
            try:
                with iproute(self.node.netns) as ipr:
                    ifname = str(link_of_address(ipr, self.node.node_ip).get_attr("IFLA_IFNAME"))
            except LookupError as exc:
                log.warning("cannot answer ARP for %s: %s", ", ".join(map(str, sorted(mine))), exc)
                return
            self._announcer = Announcer(ifname)
        if mine != self._announcer.addresses:
            self._announcer.announce(mine)
