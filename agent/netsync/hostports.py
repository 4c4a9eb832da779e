"""`hostPort`: a container port published on this board's address, as one more NodePort-like proxy rule.

Only this node's own pods matter (the pod runs here), so the rules come from the
agent's pod cache and the pod addresses it gave out. Each (protocol, hostPort)
becomes a `ServiceRule` without a ClusterIP whose only endpoint is the pod, so it
rides the proxy's `nodeports` map: the same DNAT, the same reject-free path and
one transaction with the services. `hostIP` is not honoured (the port is opened
on the node's address); a terminating pod loses its ports at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Address
from typing import Any

from agent.proxy import Protocol, ServiceRule

Obj = dict[str, Any]


def hostport_rules(pods: Iterable[Obj], address_of: Callable[[str], str]) -> list[ServiceRule]:
    """Rules for the host ports of `pods`; `address_of(uid)` is the pod's IP ("" if it has none yet)."""
    rules = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        ip = address_of(str(meta.get("uid") or ""))
        if not ip:
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            for port in container.get("ports") or []:
                if not port.get("hostPort") or not port.get("containerPort"):
                    continue
                try:
                    protocol = Protocol.parse(str(port.get("protocol") or "TCP"))
                except ValueError:
                    continue
                host_port = int(port["hostPort"])
                rules.append(ServiceRule(
                    namespace=str(meta.get("namespace") or "default"), name=f"hostport.{meta.get('name')}",
                    cluster_ip=None, protocol=protocol, port=host_port, node_port=host_port,
                    endpoints=[(IPv4Address(ip), int(port["containerPort"]))]))
    return sorted(rules, key=lambda r: r.key)
