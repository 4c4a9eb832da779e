"""Services as one nft script: a pure function of the service list, so every rule is unit-tested as text.

Shape of `table ip pikube` (lookups by map, not a rule per endpoint):

* map `services` (ClusterIP . proto . port → goto svc-…) and map `nodeports`
  (proto . port → goto svc-…, matched only on the node's addresses) dispatch from
  the nat prerouting (pods, LAN) and nat output (the node itself) hooks;
* a service chain DNATs with `numgen random mod N` over an anonymous map of its N
  ready endpoints; with ClientIP affinity it first sends a client found in an
  endpoint's timed set to that endpoint's chain, which refreshes the set and DNATs;
* sets `no-endpoints` / `no-endpoint-nodeports` make the filter hooks reject a
  service without endpoints at once (TCP reset, else ICMP port unreachable);
* map `externals` (external address . proto . port → goto svc-…) dispatches
  `spec.externalIPs` and LoadBalancer ingress addresses like ClusterIPs, from
  anywhere (traffic must already be routed or ARPed to a board);
* `externalTrafficPolicy: Local`: NodePorts and external addresses go to an
  `ext-…` chain instead, which sends pods and the board itself to every
  endpoint (as kube-proxy treats in-cluster clients) and the rest only to this
  node's endpoints (`local-…`; dropped when there is none), marked so that
  nothing masquerades them: the endpoint sees the client's own address;
* nat postrouting masquerades NodePort traffic (so replies come back through this
  node), traffic to a `Cluster`-policy external address from outside the pod
  network (likewise), hairpin traffic (a pod reaching itself through a service;
  or, without bridge netfilter, any service traffic leaving by the bridge) and pod
  traffic leaving the pod network — except what the `Local` chains marked.

A sync flushes the table's rules and the static sets and rebuilds them in the
same transaction; affinity sets that are still wanted are kept (with their
clients), stale chains and sets are deleted: that is why the renderer is told
what the table holds now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from agent.proxy.model import TABLE, Endpoint, ProxyConfig, ServiceRule, TableObjects

STATIC_SETS = {
    "node-addresses": "ipv4_addr",
    "hairpin": "ipv4_addr . ipv4_addr",
    "no-endpoints": "ipv4_addr . inet_proto . inet_service",
    "no-endpoint-nodeports": "inet_proto . inet_service",
    "external-addresses": "ipv4_addr",
}
STATIC_MAPS = {
    "services": "ipv4_addr . inet_proto . inet_service : verdict",
    "nodeports": "inet_proto . inet_service : verdict",
    "externals": "ipv4_addr . inet_proto . inet_service : verdict",
}
BASE_CHAINS = {
    "nat-prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "nat-output": "type nat hook output priority -100; policy accept;",
    "nat-postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "filter-input": "type filter hook input priority filter; policy accept;",
    "filter-forward": "type filter hook forward priority filter; policy accept;",
    "filter-output": "type filter hook output priority filter; policy accept;",
}


KEEP_SOURCE = "0x00010000"
"""The packet mark of `Local`-policy traffic from outside: nat postrouting masquerades none of it."""


def service_chain(rule: ServiceRule) -> str:
    return f"svc-{rule.key}"


def external_chain(rule: ServiceRule) -> str:
    return f"ext-{rule.key}"


def local_chain(rule: ServiceRule) -> str:
    return f"local-{rule.key}"


def endpoint_chain(rule: ServiceRule, endpoint: Endpoint) -> str:
    return f"ep-{rule.key}-{endpoint[0]}-{endpoint[1]}"


def affinity_set(rule: ServiceRule, endpoint: Endpoint) -> str:
    return f"aff-{rule.key}-{endpoint[0]}-{endpoint[1]}-{rule.affinity_timeout}"


def _elements(items: Iterable[str]) -> str:
    listed = sorted(set(items))
    return f" elements = {{ {', '.join(listed)} }};" if listed else ""


def _unique(rules: Iterable[ServiceRule]) -> list[ServiceRule]:
    """One owner per ClusterIP/proto/port, per NodePort and per external address/proto/port: the first rule
    by key keeps a clashing part."""
    seen: set[tuple[object, ...]] = set()
    result = []
    for rule in sorted(rules, key=lambda r: r.key):
        by_ip = ("ip", rule.cluster_ip, rule.protocol, rule.port)
        by_node = ("node", rule.protocol, rule.node_port)
        if rule.cluster_ip and by_ip in seen:
            rule = replace(rule, cluster_ip=None)
        if rule.node_port and by_node in seen:
            rule = replace(rule, node_port=None)
        externals = tuple(ip for ip in rule.external_ips if ("ext", ip, rule.protocol, rule.port) not in seen)
        if externals != rule.external_ips:
            rule = replace(rule, external_ips=externals)
        if rule.cluster_ip:
            seen.add(by_ip)
        if rule.node_port:
            seen.add(by_node)
        seen.update(("ext", ip, rule.protocol, rule.port) for ip in rule.external_ips)
        if rule.cluster_ip or rule.node_port or rule.external_ips:
            result.append(rule)
    return result


def _dnat(rule: ServiceRule, endpoints: list[Endpoint]) -> str:
    targets = ", ".join(f"{i} : {ip} . {port}" for i, (ip, port) in enumerate(endpoints))
    pick = f"numgen random mod {len(endpoints)} map {{ {targets} }}"
    return f"meta l4proto {rule.protocol.value} dnat ip addr . port to {pick}"


def _local_chains(rule: ServiceRule, config: ProxyConfig) -> dict[str, list[str]]:
    """`Local` policy: in-cluster clients to every endpoint, the rest to this node's, their source kept."""
    local = rule.node_endpoints()
    last = f"goto {local_chain(rule)}" if local else "drop"
    chains = {external_chain(rule): [
        f"ip saddr {config.pod_cidr} goto {service_chain(rule)}",
        f"fib saddr type local goto {service_chain(rule)}",
        f"meta mark set meta mark | {KEEP_SOURCE}",
        last,
    ]}
    if local:
        chains[local_chain(rule)] = [_dnat(rule, local)]
    return chains


def _service_chains(rule: ServiceRule) -> dict[str, list[str]]:
    """The chain DNATing `rule` to its endpoints, plus its endpoint chains when it has affinity."""
    proto = rule.protocol.value
    endpoints = rule.ready_endpoints()
    count = len(endpoints)
    if not rule.affinity_timeout:
        return {service_chain(rule): [_dnat(rule, endpoints)]}
    chains: dict[str, list[str]] = {}
    sticky = [f"ip saddr @{affinity_set(rule, ep)} goto {endpoint_chain(rule, ep)}" for ep in endpoints]
    choices = ", ".join(f"{i} : goto {endpoint_chain(rule, ep)}" for i, ep in enumerate(endpoints))
    chains[service_chain(rule)] = [*sticky, f"numgen random mod {count} vmap {{ {choices} }}"]
    for ip, port in endpoints:
        chains[endpoint_chain(rule, (ip, port))] = [
            f"update @{affinity_set(rule, (ip, port))} {{ ip saddr }}",
            f"meta l4proto {proto} dnat ip to {ip}:{port}",
        ]
    return chains


def _fixed_chains(config: ProxyConfig) -> dict[str, list[str]]:
    pods = str(config.pod_cidr)
    if config.bridge_netfilter:
        same_bridge = "ct status dnat ip saddr . ip daddr @hairpin masquerade"
    else:
        same_bridge = f'ct status dnat ip saddr {pods} oifname "{config.bridge}" masquerade'
    check = "ct state new jump endpoints-check"
    return {
        "reject-service": [
            "meta l4proto tcp reject with tcp reset",
            "reject with icmp type port-unreachable",
        ],
        "endpoints-check": [
            "ip daddr . meta l4proto . th dport @no-endpoints goto reject-service",
            "ip daddr @node-addresses meta l4proto . th dport @no-endpoint-nodeports goto reject-service",
        ],
        "services": [
            "ip daddr . meta l4proto . th dport vmap @services",
            "ip daddr @node-addresses meta l4proto . th dport vmap @nodeports",
            "ip daddr . meta l4proto . th dport vmap @externals",
        ],
        "nat-prerouting": ["jump services"],
        "nat-output": ["jump services"],
        "nat-postrouting": [
            f"meta mark & {KEEP_SOURCE} == {KEEP_SOURCE} return",
            "ct status dnat ct original ip daddr @node-addresses masquerade",
            f"ct status dnat ct original ip daddr @external-addresses ip saddr != {pods} masquerade",
            same_bridge,
            f"ip saddr {pods} ip daddr != {pods} masquerade",
        ],
        "filter-input": [check],
        "filter-forward": [check],
        "filter-output": [check],
    }


def render(rules: Iterable[ServiceRule], config: ProxyConfig, existing: TableObjects | None = None) -> str:
    """The nft script that makes `table ip pikube` serve exactly `rules`, given what it holds now."""
    existing = existing or TableObjects()
    services = _unique(rules)
    elements: dict[str, list[str]] = {name: [] for name in (*STATIC_SETS, *STATIC_MAPS)}
    elements["node-addresses"] = [str(ip) for ip in config.node_addresses]
    chains: dict[str, list[str]] = {}
    affinity: dict[str, int] = {}
    for rule in services:
        proto = rule.protocol.value
        endpoints = rule.ready_endpoints()
        elements["hairpin"] += [f"{ip} . {ip}" for ip, _ in endpoints]
        if not endpoints:
            if rule.cluster_ip:
                elements["no-endpoints"].append(f"{rule.cluster_ip} . {proto} . {rule.port}")
            if rule.node_port:
                elements["no-endpoint-nodeports"].append(f"{proto} . {rule.node_port}")
            elements["no-endpoints"] += [f"{ip} . {proto} . {rule.port}" for ip in rule.external_ips]
            continue
        target = f"goto {service_chain(rule)}"
        outside = f"goto {external_chain(rule)}" if rule.local_only else target
        if rule.cluster_ip:
            elements["services"].append(f"{rule.cluster_ip} . {proto} . {rule.port} : {target}")
        if rule.node_port:
            elements["nodeports"].append(f"{proto} . {rule.node_port} : {outside}")
        elements["externals"] += [f"{ip} . {proto} . {rule.port} : {outside}" for ip in rule.external_ips]
        if not rule.local_only:
            elements["external-addresses"] += [str(ip) for ip in rule.external_ips]
        chains.update(_service_chains(rule))
        if rule.local_only and (rule.node_port or rule.external_ips):
            chains.update(_local_chains(rule, config))
        if rule.affinity_timeout:
            affinity.update({affinity_set(rule, ep): rule.affinity_timeout for ep in endpoints})
    chains.update(_fixed_chains(config))

    out = [f"add table ip {TABLE}", f"flush table ip {TABLE}"]
    out += [f"flush set ip {TABLE} {name}" for name in sorted(existing.sets & STATIC_SETS.keys())]
    out += [f"flush map ip {TABLE} {name}" for name in sorted(existing.maps & STATIC_MAPS.keys())]
    out += [f"delete chain ip {TABLE} {name}" for name in sorted(existing.chains - chains.keys())]
    wanted_sets = STATIC_SETS.keys() | affinity.keys()
    out += [f"delete set ip {TABLE} {name}" for name in sorted(existing.sets - wanted_sets)]
    out += [f"delete map ip {TABLE} {name}" for name in sorted(existing.maps - STATIC_MAPS.keys())]
    out.append(f"table ip {TABLE} {{")
    for name, kind in STATIC_SETS.items():
        out.append(f"  set {name} {{ type {kind};{_elements(elements[name])} }}")
    for name, timeout in sorted(affinity.items()):
        out.append(f"  set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}")
    for name, kind in STATIC_MAPS.items():
        out.append(f"  map {name} {{ type {kind};{_elements(elements[name])} }}")
    for name, body in chains.items():
        out.append(f"  chain {name} {{")
        if name in BASE_CHAINS:
            out.append(f"    {BASE_CHAINS[name]}")
        out += [f"    {line}" for line in body]
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"
