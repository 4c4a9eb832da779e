"""Reading and writing the routes pikube owns, recognised by their rtnetlink protocol number.

Routes made here always carry one of the protocols in `names.OWNED_PROTOCOLS`, and
only routes carrying them are ever listed for deletion: a route someone else made,
even to the same destination, is never removed.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from socket import AF_INET
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from agent.network.peers import Route, RoutePlan

MAIN_TABLE = 254
RTNH_F_ONLINK = 4
RT_SCOPE_LINK = 253


class RouteError(RuntimeError):
    """Some routes could not be written; the others were."""


def current_routes(ipr: Any, proto: int) -> list[Route]:
    """The IPv4 routes in the main table marked with `proto`."""
    result: list[Route] = []
    for msg in ipr.route("dump", family=AF_INET, table=MAIN_TABLE, proto=proto):
        dst = msg.get("dst") or "0.0.0.0"
        gateway = msg.get("gateway")
        result.append(
            Route(
                IPv4Network(f"{dst}/{msg.get('dst_len')}"),
                IPv4Address(gateway) if gateway else None,
                msg.get("oif"),
                bool(msg.get("flags", 0) & RTNH_F_ONLINK),
            )
        )
    return result


def _spec(route: Route, proto: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dst": str(route.dst),
        "table": MAIN_TABLE,
        "proto": proto,
        "family": AF_INET,
    }
    if route.gateway is not None:
        spec["gateway"] = str(route.gateway)
    else:
        spec["scope"] = RT_SCOPE_LINK
    if route.oif is not None:
        spec["oif"] = route.oif
    if route.onlink:
        spec["flags"] = RTNH_F_ONLINK
    return spec


def apply_route_plan(ipr: Any, plan: RoutePlan, proto: int) -> None:
    """Delete then replace as planned; raises RouteError naming every route that failed."""
    failures: list[str] = []
    for route in plan.delete:
        try:
            ipr.route("del", **_spec(route, proto))
        except NetlinkError as exc:
            if exc.code != 3:  # ESRCH: already gone
                failures.append(f"del {route.dst}: {exc}")
    for route in plan.replace:
        try:
            ipr.route("replace", **_spec(route, proto))
        except NetlinkError as exc:
            failures.append(f"replace {route.dst} via {route.gateway}: {exc}")
    if failures:
        raise RouteError("; ".join(failures))


def delete_owned_routes(ipr: Any, proto: int) -> None:
    """Remove every route marked with `proto`."""
    apply_route_plan(ipr, RoutePlan((), tuple(current_routes(ipr, proto))), proto)


def local_addresses(ipr: Any) -> list[IPv4Address]:
    """Every IPv4 address configured in the namespace."""
    return [IPv4Address(msg.get("address")) for msg in ipr.addr("dump", family=AF_INET)]


def link_index(ipr: Any, ifname: str) -> int | None:
    """The ifindex of `ifname`, or None if there is no such link."""
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def require_link(ipr: Any, ifname: str) -> int:
    """The ifindex of `ifname`; raises LookupError if there is no such link."""
    index = link_index(ipr, ifname)
    if index is None:
        raise LookupError(f"link {ifname} does not exist")
    return index


def link_of_address(ipr: Any, address: IPv4Address) -> Any:
    """The link message of the interface holding `address`; raises LookupError if none does."""
    for msg in ipr.addr("dump", family=AF_INET):
        if IPv4Address(msg.get("address")) == address:
            return ipr.link("get", index=msg["index"])[0]
    raise LookupError(f"no interface holds {address}")
