"""Service rows: ClusterIP and ports, with each NodePort as links to the boards that answer on it."""

from __future__ import annotations

from typing import Any

from web.model import Port, Service

Obj = dict[str, Any]


def _url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def service(obj: Obj, board_addresses: list[str]) -> Service:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        node_port = p.get("nodePort") if isinstance(p.get("nodePort"), int) else None
        protocol = str(p.get("protocol") or "TCP")
        urls = [_url(a, node_port) for a in board_addresses] if node_port and protocol == "TCP" else []
        ports.append(Port(name=str(p.get("name") or ""), protocol=protocol, port=int(p.get("port") or 0),
                          targetPort=str(p.get("targetPort") or p.get("port") or ""), nodePort=node_port,
                          urls=urls))
    return Service(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                   type=str(spec.get("type") or "ClusterIP"), clusterIP=str(spec.get("clusterIP") or ""),
                   ports=ports)


def services(objs: list[Obj], board_addresses: list[str]) -> list[Service]:
    """`board_addresses`: the Ready boards' addresses, where NodePorts are reachable."""
    rows = [service(o, board_addresses) for o in objs]
    return sorted(rows, key=lambda s: (s["namespace"], s["name"]))
