"""Who answers ARP for a LoadBalancer pool address, and the ARP packets themselves."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from agent.netsync.announce import announced, leader
from agent.network import arp

Obj = dict[str, Any]
VIP = IPv4Address("192.168.1.240")


def node(name: str, ip: str, ready: bool = True) -> Obj:
    return {"metadata": {"name": name}, "status": {
        "addresses": [{"type": "InternalIP", "address": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]}}


def lb(ingress: list[str], **spec: Any) -> Obj:
    return {"metadata": {"namespace": "default", "name": "web"}, "spec": {"type": "LoadBalancer", **spec},
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ingress]}}}


NODES = [node("b1", "192.168.1.11"), node("b2", "192.168.1.12"), node("b3", "192.168.1.13")]


def test_exactly_one_ready_board_announces_each_pool_address_and_all_agree() -> None:
    services = [lb([str(VIP)]), lb(["192.168.1.241"])]
    per_board = {n["metadata"]["name"]: announced(services, NODES, {}, n["metadata"]["name"]) for n in NODES}
    for address in (VIP, IPv4Address("192.168.1.241")):
        assert sum(address in mine for mine in per_board.values()) == 1, per_board
    assert leader(VIP, ["b1", "b2", "b3"]) == leader(VIP, ["b3", "b1", "b2"])  # order-free


def test_the_next_board_takes_over_when_the_leader_is_not_ready() -> None:
    first = leader(VIP, ["b1", "b2", "b3"])
    assert first is not None
    nodes = [node(n["metadata"]["name"], n["status"]["addresses"][0]["address"],
                  ready=n["metadata"]["name"] != first) for n in NODES]
    heirs = [n for n in ("b1", "b2", "b3") if VIP in announced([lb([str(VIP)])], nodes, {}, n)]
    assert len(heirs) == 1 and heirs[0] != first


def test_board_addresses_other_classes_and_local_policy() -> None:
    # ServiceLB mode: a board's own address is never announced by ARP from here.
    assert all(not announced([lb(["192.168.1.12"])], NODES, {}, n) for n in ("b1", "b2", "b3"))
    # Another implementation's service is left to it.
    assert all(not announced([lb([str(VIP)], loadBalancerClass="x/y")], NODES, {}, n) for n in ("b1", "b2", "b3"))
    # Local: only a board with a ready endpoint may announce.
    eps = {("default", "web"): {"subsets": [{"addresses": [{"ip": "10.244.2.5", "nodeName": "b2"}]}]}}
    svc = lb([str(VIP)], externalTrafficPolicy="Local")
    assert [n for n in ("b1", "b2", "b3") if announced([svc], NODES, eps, n)] == ["b2"]


def test_arp_requests_for_announced_addresses_get_a_reply_from_our_mac() -> None:
    own, asker = bytes.fromhex("02aabbccdd01"), bytes.fromhex("02aabbccdd99")
    request = arp.Arp(arp.REQUEST, asker, IPv4Address("192.168.1.50"), b"\x00" * 6, VIP)
    parsed = arp.parse(arp.frame(arp.BROADCAST, asker, request))
    assert parsed == request
    answer = arp.reply_to(request, own, {VIP})
    assert answer is not None
    assert answer[:6] == asker and answer[6:12] == own
    reply = arp.parse(answer)
    assert reply == arp.Arp(arp.REPLY, own, VIP, asker, IPv4Address("192.168.1.50"))
    # Not ours, our own echo, someone's gratuitous ARP, junk: no answer.
    assert arp.reply_to(request, own, {IPv4Address("192.168.1.241")}) is None
    assert arp.reply_to(arp.Arp(arp.REQUEST, own, VIP, b"\x00" * 6, VIP), own, {VIP}) is None
    assert arp.reply_to(arp.Arp(arp.REQUEST, asker, VIP, b"\x00" * 6, VIP), own, {VIP}) is None
    assert arp.parse(b"\x00" * 20) is None and arp.parse(b"\xff" * 12 + b"\x08\x00" + b"\x00" * 28) is None


def test_gratuitous_arp_is_a_broadcast_request_and_reply_for_the_address() -> None:
    own = bytes.fromhex("02aabbccdd01")
    packets = [arp.parse(p) for p in arp.gratuitous(VIP, own)]
    assert [p.op for p in packets if p] == [arp.REQUEST, arp.REPLY]
    assert all(p is not None and p.sender_ip == p.target_ip == VIP and p.sender_mac == own for p in packets)
