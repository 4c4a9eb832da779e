"""Services and Endpoints as the proxy sees them: one `ServiceRule` per service port, with its ready endpoints.

Pure, so every Kubernetes rule of kube-proxy that pikube keeps is unit-tested:

* types ClusterIP, NodePort and LoadBalancer are served; ExternalName and headless
  services (`clusterIP: None`) are not the proxy's business;
* `spec.externalIPs` and, for a LoadBalancer, the addresses in
  `status.loadBalancer.ingress` (the boards' own, given by the master's servicelb
  controller) are served on the service's ports like the ClusterIP;
* `externalTrafficPolicy: Local` (NodePort, LoadBalancer) keeps traffic from
  outside the cluster on this node's own endpoints, which the Endpoints'
  `nodeName` tells;
* an endpoint port is matched to the service port by name (and protocol), as the
  Endpoints controller writes them; only `addresses` (ready) are used, never
  `notReadyAddresses`;
* `sessionAffinity: ClientIP` keeps its timeout (default 10800 s);
* protocols other than TCP and UDP (SCTP) and non-IPv4 addresses are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address
from typing import Any

from agent.proxy import Protocol, ServiceRule

Obj = dict[str, Any]
DEFAULT_AFFINITY_SECONDS = 10800
SERVED_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


def _ipv4(text: Any) -> IPv4Address | None:
    try:
        return IPv4Address(str(text))
    except ValueError:
        return None


def _protocol(text: Any) -> Protocol | None:
    try:
        return Protocol.parse(str(text or "TCP"))
    except ValueError:
        return None


def _affinity(spec: Obj) -> int | None:
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    seconds = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
    return int(seconds) if seconds else DEFAULT_AFFINITY_SECONDS


def endpoints_for(endpoints: Obj | None, port_name: str, protocol: Protocol,
                  node_name: str | None = None) -> list[tuple[IPv4Address, int]]:
    """Ready (address, port) pairs of the Endpoints object for the service port named `port_name`
    (with `node_name`, only those on that node)."""
    found: list[tuple[IPv4Address, int]] = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p for p in subset.get("ports") or []
                 if str(p.get("name") or "") == port_name and _protocol(p.get("protocol")) is protocol]
        if not ports or not ports[0].get("port"):
            continue
        number = int(ports[0]["port"])
        for address in subset.get("addresses") or []:
            ip = _ipv4(address.get("ip"))
            if ip is not None and (node_name is None or address.get("nodeName") == node_name):
                found.append((ip, number))
    return found


def external_ips(service: Obj) -> tuple[IPv4Address, ...]:
    """`spec.externalIPs`, and a LoadBalancer's ingress addresses, as IPv4 addresses (others skipped)."""
    spec = service.get("spec") or {}
    texts = list(spec.get("externalIPs") or [])
    if spec.get("type") == "LoadBalancer":
        texts += [i.get("ip") for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                  if isinstance(i, dict)]
    found = [ip for ip in (_ipv4(t) for t in texts) if ip is not None]
    return tuple(sorted(set(found), key=int))


def rules_for(service: Obj, endpoints: Obj | None, node_name: str = "") -> list[ServiceRule]:
    """The proxy rules of one Service (none for a type or address the proxy does not serve) on node `node_name`."""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    if (spec.get("type") or "ClusterIP") not in SERVED_TYPES:
        return []
    cluster_ip = _ipv4(spec.get("clusterIP"))
    with_node_ports = spec.get("type") in ("NodePort", "LoadBalancer")
    local_only = with_node_ports and spec.get("externalTrafficPolicy") == "Local"
    affinity = _affinity(spec)
    externals = external_ips(service)
    rules = []
    for port in spec.get("ports") or []:
        protocol = _protocol(port.get("protocol"))
        if protocol is None or not port.get("port"):
            continue
        node_port = int(port["nodePort"]) if with_node_ports and port.get("nodePort") else None
        if cluster_ip is None and node_port is None:
            continue
        name = str(port.get("name") or "")
        rules.append(ServiceRule(
            namespace=str(meta.get("namespace") or "default"), name=str(meta.get("name") or ""),
            cluster_ip=cluster_ip, protocol=protocol, port=int(port["port"]), node_port=node_port,
            endpoints=endpoints_for(endpoints, name, protocol),
            affinity_timeout=affinity, external_ips=externals, local_only=local_only,
            local_endpoints=endpoints_for(endpoints, name, protocol, node_name) if local_only else []))
    return rules


def service_rules(services: Iterable[Obj], endpoints: Mapping[tuple[str, str], Obj],
                  node_name: str = "", local: IPv4Address | None = None) -> list[ServiceRule]:
    """Every served service port on node `node_name`, given Endpoints by (namespace, name); sorted for stable
    comparisons.

    A service whose cluster IP is `local` (the cluster DNS, answered on this node itself) gets no rule: it
    has no endpoints, and the proxy's reject for such services would stop the node's own responder."""
    rules = []
    for service in services:
        if local is not None and _ipv4((service.get("spec") or {}).get("clusterIP")) == local:
            continue
        meta = service.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        rules += rules_for(service, endpoints.get(key), node_name)
    return sorted(rules, key=lambda r: r.key)
