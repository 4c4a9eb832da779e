"""The service load balancer: a LoadBalancer Service gets the boards' own addresses, with no extra pods.

k3s's ServiceLB runs a DaemonSet of `svclb-*` pods whose hostPorts forward to
the service; pikube owns its agents, so the agents' service proxy accepts
`<board address>:<port>` for every address in `status.loadBalancer.ingress`
(agent/netsync/services.py) and this controller only decides what that status
says, as ServiceLB does:

* the ingress is the InternalIP of every eligible board: Ready and schedulable,
  and, when any board carries the label `svccontroller.pikube.io/enablelb=true`,
  only those (k3s's `enablelb` pools); with `externalTrafficPolicy: Local` only
  the eligible boards that run a ready endpoint of the service, so no traffic is
  sent where it would be dropped;
* one LoadBalancer Service per port and protocol: the boards' addresses are
  shared, so the oldest Service holding a port keeps it, a later one stays
  `<pending>` (no ingress) with a Warning event naming the holder, and takes the
  port when the holder is deleted or changes;
* a Service with `spec.loadBalancerClass` belongs to another implementation and
  is left alone; a Service that is no longer a LoadBalancer loses its ingress.

With an address pool in the master's settings (`--lb-pool`, opt-in) a
LoadBalancer Service gets an address of its own instead, as MetalLB's layer-2
mode gives: the one it asks for (`spec.loadBalancerIP`, or MetalLB's
`metallb.universe.tf/loadBalancerIPs` / `metallb.io/loadBalancerIPs`
annotation, honoured when free and in the pool), else the one it has, else the
first free one; a pool with none left leaves the Service pending with a Warning.
One board answers ARP for each address (agent/netsync/announce.py); every board
DNATs it, so a failover changes no rules.

The decision needs every LoadBalancer Service at once (ports and addresses are
claimed across services), so everything is synced under one key; a cluster has
a handful of such services.
"""

from __future__ import annotations

import threading
from ipaddress import IPv4Address
from typing import Any

from core.kube import scheduling
from core.wellknown import API_ADDRESS_ANNOTATION, API_SERVICE
from master.client import Env, Informer
from master.controllers.base import Controller

Obj = dict[str, Any]
COMPONENT = "service-lb-controller"
ENABLE_LABEL = "svccontroller.pikube.io/enablelb"
_ALL = "all"  # the controller's one queue key
REQUEST_ANNOTATIONS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")


def internal_ip(node: Obj) -> str:
    return next((str(a.get("address")) for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") == "InternalIP" and a.get("address")), "")


def eligible_nodes(nodes: list[Obj]) -> list[Obj]:
    """Ready, schedulable boards with an address; only the `enablelb` ones when any board is labelled."""
    labelled = [n for n in nodes if ((n.get("metadata") or {}).get("labels") or {}).get(ENABLE_LABEL) is not None]
    pool = [n for n in labelled if n["metadata"]["labels"][ENABLE_LABEL] == "true"] if labelled else nodes
    return [n for n in pool if scheduling.ready_status(n) == "True" and not (n.get("spec") or {}).get("unschedulable")
            and internal_ip(n)]


def endpoint_nodes(endpoints: Obj | None) -> set[str]:
    """The nodes that run a ready endpoint (Endpoints `addresses`, not `notReadyAddresses`)."""
    return {str(a["nodeName"]) for s in (endpoints or {}).get("subsets") or []
            for a in s.get("addresses") or [] if a.get("nodeName")}


def ports_of(svc: Obj) -> list[tuple[str, int]]:
    return [(str(p.get("protocol") or "TCP"), int(p["port"])) for p in (svc.get("spec") or {}).get("ports") or []
            if isinstance(p.get("port"), int)]


def served_here(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def _age(svc: Obj) -> tuple[str, str, str]:
    meta = svc.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _key(svc: Obj) -> tuple[str, str]:
    meta = svc.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def requested(svc: Obj) -> str:
    """The address a Service asks for: `spec.loadBalancerIP`, else the first of MetalLB's annotations."""
    asked = str((svc.get("spec") or {}).get("loadBalancerIP") or "")
    annotations = (svc.get("metadata") or {}).get("annotations") or {}
    for name in REQUEST_ANNOTATIONS:
        if not asked and annotations.get(name):
            asked = str(annotations[name]).split(",")[0].strip()
    return asked


def assign_from_pool(services: list[Obj], pool: list[IPv4Address]
                     ) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], str]]:
    """The address-pool mode of `assign`: one pool address per Service, kept while it is wanted."""
    in_pool = {str(a) for a in pool}
    taken: dict[str, str] = {}
    ingress: dict[tuple[str, str], list[str]] = {}
    blocked: dict[tuple[str, str], str] = {}
    ordered = sorted((s for s in services if served_here(s)), key=_age)
    for svc in ordered:  # first, what Services already hold (and still want)
        held = next((ip for ip in current_ingress(svc) if ip in in_pool), "")
        if held and requested(svc) in ("", held) and held not in taken:
            taken[held] = "/".join(_key(svc))
            ingress[_key(svc)] = [held]
    for svc in ordered:
        key = _key(svc)
        if key in ingress:
            continue
        ingress[key] = []
        asked = requested(svc)
        if asked and asked not in in_pool:
            blocked[key] = f"the requested address {asked} is not in the LoadBalancer pool"
        elif asked and asked in taken:
            blocked[key] = f"the requested address {asked} is held by LoadBalancer service {taken[asked]}"
        else:
            address = asked or next((str(a) for a in pool if str(a) not in taken), "")
            if not address:
                blocked[key] = (f"no free address in the LoadBalancer pool ({len(pool)} addresses, all "
                                "assigned); this one stays pending until one is released")
                continue
            taken[address] = "/".join(key)
            ingress[key] = [address]
    return ingress, blocked


def assign(services: list[Obj], nodes: list[Obj], endpoints: dict[tuple[str, str], Obj],
           pool: list[IPv4Address] | None = None
           ) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], str]]:
    """For every LoadBalancer Service this controller serves: its ingress addresses, and, for one left
    pending (a port or address another holds, an exhausted pool), a sentence saying why (keys are
    (namespace, name)). The masters' floating address (`kube-system/pikube-api`) is its own: it claims no
    port on the boards' addresses and takes nothing from the pool."""
    fixed = {_key(s): [floating] for s in services if _key(s) == API_SERVICE and served_here(s)
             and (floating := str(((s.get("metadata") or {}).get("annotations") or {}).get(API_ADDRESS_ANNOTATION)
                                  or ""))}
    rest = [s for s in services if _key(s) not in fixed]
    ingress, blocked = assign_from_pool(rest, pool) if pool else _assign_boards(rest, nodes, endpoints)
    return {**ingress, **fixed}, blocked


def _assign_boards(services: list[Obj], nodes: list[Obj], endpoints: dict[tuple[str, str], Obj]
                   ) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], str]]:
    """ServiceLB's mode: the eligible boards' own addresses, one Service per port."""
    eligible = eligible_nodes(nodes)
    ingress: dict[tuple[str, str], list[str]] = {}
    blocked: dict[tuple[str, str], str] = {}
    holders: dict[tuple[str, int], str] = {}
    for svc in sorted((s for s in services if served_here(s)), key=_age):
        meta = svc["metadata"]
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        taken = [(proto, port, holders[(proto, port)]) for proto, port in ports_of(svc) if (proto, port) in holders]
        if taken:
            proto, port, holder = taken[0]
            blocked[key] = (f"port {port}/{proto} on the boards' addresses is held by LoadBalancer service "
                            f"{holder}; this one stays pending until it is free")
            ingress[key] = []
            continue
        for proto, port in ports_of(svc):
            holders[(proto, port)] = f"{key[0]}/{key[1]}"
        boards = eligible
        if (svc.get("spec") or {}).get("externalTrafficPolicy") == "Local":
            local = endpoint_nodes(endpoints.get(key))
            boards = [n for n in eligible if n["metadata"]["name"] in local]
        ingress[key] = sorted({internal_ip(n) for n in boards}, key=lambda ip: tuple(int(x) for x in ip.split(".")))
    return ingress, blocked


def current_ingress(svc: Obj) -> list[str]:
    return [str(i.get("ip")) for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if i.get("ip")]


class ServiceLBController(Controller):
    name = "servicelb"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.services: Informer = env.informers.informer(self.kinds.services)
        self.nodes: Informer = env.informers.informer(self.kinds.nodes)
        self.endpoints: Informer = env.informers.informer(self.kinds.endpoints)
        self.pool = env.settings.lb_pool_addresses()
        self._told: dict[tuple[str, str], str] = {}  # the last Warning given per pending service
        self._lock = threading.Lock()
        self.services.add_handler(self._service_changed)
        self.nodes.add_handler(self._node_changed)
        self.endpoints.add_handler(self._endpoints_changed)

    def resync_keys(self) -> list[str]:
        return [_ALL]

    def _kick(self) -> None:
        self.queue.add(_ALL)

    def _service_changed(self, old: Obj | None, new: Obj | None) -> None:
        if any(s is not None and ((s.get("spec") or {}).get("type") == "LoadBalancer" or current_ingress(s))
               for s in (old, new)):
            self._kick()

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        def view(n: Obj | None) -> tuple[object, ...] | None:
            if n is None:
                return None
            return (bool(eligible_nodes([n])), internal_ip(n),
                    ((n.get("metadata") or {}).get("labels") or {}).get(ENABLE_LABEL))
        if view(old) != view(new):
            self._kick()

    def _endpoints_changed(self, old: Obj | None, new: Obj | None) -> None:
        if endpoint_nodes(old) != endpoint_nodes(new):
            self._kick()

    def sync(self, key: str) -> None:
        services = self.services.list()
        endpoints = {(str(e["metadata"].get("namespace") or ""), str(e["metadata"].get("name") or "")): e
                     for e in self.endpoints.list()}
        ingress, blocked = assign(services, self.nodes.list(), endpoints, self.pool)
        with self._lock:
            self._told = {k: v for k, v in self._told.items() if k in ingress}
        for svc in services:
            meta = svc["metadata"]
            skey = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            if skey in ingress:
                want = ingress[skey]
            elif not served_here(svc) and (svc.get("spec") or {}).get("type") != "LoadBalancer":
                want = []  # no longer a LoadBalancer: its addresses are released
            else:
                continue  # another implementation's (loadBalancerClass)
            if current_ingress(svc) != want:
                status = dict(svc.get("status") or {})
                status["loadBalancer"] = {"ingress": [{"ip": ip} for ip in want]} if want else {}
                self.client.update_status(self.kinds.services, {**svc, "status": status})
                if want:
                    self.env.recorder.event(svc, "Normal", "UpdatedLoadBalancer",
                                            f"Updated LoadBalancer with new IPs: {', '.join(want)}", COMPONENT)
            self._warn(svc, skey, blocked.get(skey, ""))

    def _warn(self, svc: Obj, key: tuple[str, str], message: str) -> None:
        with self._lock:
            told = self._told.get(key, "")
            if message:
                self._told[key] = message
            else:
                self._told.pop(key, None)
        if message and message != told:
            self.env.recorder.event(svc, "Warning", "UnAvailableLoadBalancer", message, COMPONENT)
