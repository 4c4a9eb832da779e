"""Service rows: ClusterIP, external addresses and ports, with links to where each answers.

A NodePort links to every Ready board; a TCP port links to each external address
(the LoadBalancer's ingress — the boards' own addresses, given by the master's
servicelb controller — and `spec.externalIPs`), in kubectl's EXTERNAL-IP order.
"""

from __future__ import annotations

from typing import Any

from web.model import Port, Service

Obj = dict[str, Any]


def _url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def external_ips(obj: Obj) -> list[str]:
    """As kubectl's EXTERNAL-IP column: the load balancer's ingress, then `spec.externalIPs`."""
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    found = [str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, dict)
             and (i.get("ip") or i.get("hostname"))]
    found += [str(ip) for ip in (obj.get("spec") or {}).get("externalIPs") or [] if str(ip) not in found]
    return found


def service(obj: Obj, board_addresses: list[str]) -> Service:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    externals = external_ips(obj)
    ports = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        node_port = p.get("nodePort") if isinstance(p.get("nodePort"), int) else None
        protocol = str(p.get("protocol") or "TCP")
        urls = [_url(a, node_port) for a in board_addresses] if node_port and protocol == "TCP" else []
        ports.append(Port(name=str(p.get("name") or ""), protocol=protocol, port=int(p.get("port") or 0),
                          targetPort=str(p.get("targetPort") or p.get("port") or ""), nodePort=node_port,
                          urls=urls, externalUrls=[_url(a, int(p.get("port") or 0)) for a in externals
                                                   if protocol == "TCP" and p.get("port")]))
    kind = str(spec.get("type") or "ClusterIP")
    return Service(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                   type=kind, clusterIP=str(spec.get("clusterIP") or ""), externalIPs=externals,
                   pending=kind == "LoadBalancer" and not externals, ports=ports)


def services(objs: list[Obj], board_addresses: list[str]) -> list[Service]:
    """`board_addresses`: the Ready boards' addresses, where NodePorts are reachable."""
    rows = [service(o, board_addresses) for o in objs]
    return sorted(rows, key=lambda s: (s["namespace"], s["name"]))
