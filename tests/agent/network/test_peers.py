"""Peer diffing: which routes and vxlan entries to add and remove, computed without a kernel."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from agent.network.names import host_ifname, is_host_ifname, vtep_mac
from agent.network.peers import (
    Peer,
    Route,
    hostgw_routes,
    plan_entries,
    plan_routes,
    usable_peers,
    vxlan_fdb,
    vxlan_neighbours,
    vxlan_routes,
)

A = Peer.of("a", "10.251.7.10", "10.244.1.0/24", "0E:58:0A:FB:07:0A")
B = Peer.of("b", "10.251.7.11", "10.244.2.0/24", "0e:58:0a:fb:07:0b")
C = Peer.of("c", "10.251.7.12", "10.244.3.0/24")  # no VTEP MAC published yet


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def test_peer_of_parses_and_normalises() -> None:
    assert A.node_ip == ip("10.251.7.10")
    assert A.vtep_mac == "0e:58:0a:fb:07:0a"
    assert A.gateway == ip("10.244.1.1")
    assert C.vtep_mac is None


def test_hostgw_routes_via_node_address() -> None:
    assert hostgw_routes([A, B]) == [
        Route(net("10.244.1.0/24"), ip("10.251.7.10")),
        Route(net("10.244.2.0/24"), ip("10.251.7.11")),
    ]


def test_plan_adds_missing_and_removes_stale() -> None:
    current = [
        Route(net("10.244.1.0/24"), ip("10.251.7.10"), oif=2),
        Route(net("10.244.9.0/24"), ip("10.251.7.99")),
    ]
    plan = plan_routes(current, hostgw_routes([A, B]))
    assert plan.replace == (Route(net("10.244.2.0/24"), ip("10.251.7.11")),)
    assert plan.delete == (Route(net("10.244.9.0/24"), ip("10.251.7.99")),)


def test_plan_is_empty_when_converged() -> None:
    current = [Route(net("10.244.1.0/24"), ip("10.251.7.10"), oif=2)]
    assert plan_routes(current, hostgw_routes([A])).empty


def test_plan_replaces_a_route_whose_next_hop_moved() -> None:
    current = [Route(net("10.244.1.0/24"), ip("10.251.7.50"), oif=2)]
    plan = plan_routes(current, hostgw_routes([A]))
    assert plan.replace == (Route(net("10.244.1.0/24"), ip("10.251.7.10")),)
    assert plan.delete == ()


def test_plan_switching_backend_rewrites_routes() -> None:
    hostgw = [Route(net("10.244.1.0/24"), ip("10.251.7.10"), oif=2)]
    plan = plan_routes(hostgw, vxlan_routes([A], vxlan_index=7))
    assert plan.replace == (Route(net("10.244.1.0/24"), ip("10.244.1.1"), 7, onlink=True),)
    assert plan.replace[0].oif == 7


def test_plan_pinned_oif_must_match() -> None:
    current = [Route(net("10.244.1.0/24"), ip("10.244.1.1"), oif=3, onlink=True)]
    assert not plan_routes(current, vxlan_routes([A], vxlan_index=7)).empty
    assert plan_routes(current, vxlan_routes([A], vxlan_index=3)).empty


def test_plan_deletes_duplicates_of_one_destination() -> None:
    route = Route(net("10.244.1.0/24"), ip("10.251.7.10"), oif=2)
    plan = plan_routes([route, route], hostgw_routes([A]))
    assert plan.replace == ()
    assert plan.delete == (route,)


def test_removing_a_peer_removes_its_route() -> None:
    current = plan_routes([], hostgw_routes([A, B])).replace
    plan = plan_routes(current, hostgw_routes([A]))
    assert [r.dst for r in plan.delete] == [net("10.244.2.0/24")]
    assert plan.replace == ()


def test_usable_peers_skips_self_and_every_holder_of_a_clashing_cidr() -> None:
    assert usable_peers([B, A, C], [ip("10.251.7.11"), ip("127.0.0.1")]) == [A, C]
    # Neither holder of a range is routed: the one sorting first is not more likely the rightful one.
    clash = Peer.of("0-clash", "10.251.7.13", "10.244.1.0/24")
    narrower = Peer.of("z-narrower", "10.251.7.14", "10.244.2.128/25")  # inside b's range, not equal
    assert usable_peers([B, A, C, clash], [ip("127.0.0.1")]) == [B, C]
    assert usable_peers([B, A, C, narrower], [ip("127.0.0.1")]) == [A, C]


def test_vxlan_entries_only_for_peers_with_a_mac() -> None:
    assert vxlan_fdb([A, C]) == {("0e:58:0a:fb:07:0a", ip("10.251.7.10"))}
    assert vxlan_neighbours([A, C]) == {(ip("10.244.1.1"), "0e:58:0a:fb:07:0a")}
    assert [r.dst for r in vxlan_routes([A, C], 5)] == [net("10.244.1.0/24")]


def test_plan_entries() -> None:
    add, remove = plan_entries({("m1", 1), ("m2", 2)}, {("m2", 2), ("m3", 3)})
    assert add == {("m3", 3)}
    assert remove == {("m1", 1)}


def test_host_ifname_is_deterministic_and_short() -> None:
    name = host_ifname("0123456789abcdef" * 4)
    assert name == host_ifname("0123456789abcdef" * 4)
    assert name != host_ifname("other")
    assert len(name) <= 15 and is_host_ifname(name)
    assert not is_host_ifname("pknt1a2b3clan0") and not is_host_ifname("eth0")


def test_vtep_mac_is_locally_administered_unicast() -> None:
    mac = vtep_mac(ip("10.251.7.10"))
    assert mac == "0e:58:0a:fb:07:0a"
    first = int(mac.split(":")[0], 16)
    assert first & 0b10 and not first & 0b1
