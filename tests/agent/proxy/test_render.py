"""The nft renderer: the exact semantics of the script, checked as text (no kernel needed)."""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address

from agent.proxy.model import Protocol, ProxyConfig, ServiceRule, TableObjects
from agent.proxy.render import render

NODE = ProxyConfig((IPv4Address("10.251.7.10"), IPv4Address("192.168.1.10")))


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def web(endpoints: int = 3, affinity_timeout: int | None = None) -> ServiceRule:
    eps = [(ip(f"10.244.{i + 1}.5"), 8080) for i in range(endpoints)]
    return ServiceRule("default", "web", ip("10.96.0.10"), Protocol.TCP, 80, 30080, eps, affinity_timeout)


def chain(script: str, name: str) -> list[str]:
    """The rule lines of chain `name` in the table block."""
    match = re.search(rf"^  chain {re.escape(name)} {{\n(.*?)^  }}", script, re.S | re.M)
    assert match, f"no chain {name} in:\n{script}"
    return [line.strip() for line in match.group(1).splitlines()]


def elements(script: str, name: str) -> list[str]:
    pattern = rf"^  (?:set|map) {re.escape(name)} {{ [^\n]*?(?:elements = {{ (.*?) }};)? }}$"
    match = re.search(pattern, script, re.M)
    assert match, f"no set {name}"
    return match.group(1).split(", ") if match.group(1) else []


def test_one_map_entry_per_ready_endpoint_and_random_balancing() -> None:
    script = render([web(3)], NODE)
    [dnat] = chain(script, "svc-default-web-tcp-80")
    assert "numgen random mod 3 map" in dnat
    assert dnat.startswith("meta l4proto tcp dnat ip addr . port to ")
    targets = re.findall(r"\d+ : ([\d.]+ \. \d+)", dnat)
    assert targets == ["10.244.1.5 . 8080", "10.244.2.5 . 8080", "10.244.3.5 . 8080"]


def test_service_and_nodeport_dispatch_by_map() -> None:
    script = render([web(2)], NODE)
    assert elements(script, "services") == ["10.96.0.10 . tcp . 80 : goto svc-default-web-tcp-80"]
    assert elements(script, "nodeports") == ["tcp . 30080 : goto svc-default-web-tcp-80"]
    assert elements(script, "node-addresses") == ["10.251.7.10", "192.168.1.10"]
    assert chain(script, "services") == [
        "ip daddr . meta l4proto . th dport vmap @services",
        "ip daddr @node-addresses meta l4proto . th dport vmap @nodeports",
        "ip daddr . meta l4proto . th dport vmap @externals",
    ]
    assert chain(script, "nat-prerouting")[-1] == "jump services"
    assert chain(script, "nat-output")[-1] == "jump services"


def test_service_without_endpoints_rejects_instead_of_dnat() -> None:
    script = render([web(0)], NODE)
    assert "svc-default-web-tcp-80" not in script
    assert elements(script, "services") == []
    assert elements(script, "no-endpoints") == ["10.96.0.10 . tcp . 80"]
    assert elements(script, "no-endpoint-nodeports") == ["tcp . 30080"]
    assert chain(script, "reject-service") == [
        "meta l4proto tcp reject with tcp reset",
        "reject with icmp type port-unreachable",
    ]
    for hook in ("filter-input", "filter-forward", "filter-output"):
        assert chain(script, hook)[-1] == "ct state new jump endpoints-check"


def test_duplicate_endpoints_collapse() -> None:
    twice = [(ip("10.244.1.5"), 8080)] * 2
    rule = ServiceRule("default", "web", ip("10.96.0.10"), Protocol.TCP, 80, None, twice)
    assert "numgen random mod 1 map { 0 : 10.244.1.5 . 8080 }" in render([rule], NODE)


def test_udp_service() -> None:
    endpoints = [(ip("10.244.1.9"), 53)]
    dns = ServiceRule("kube-system", "dns", ip("10.96.0.53"), Protocol.parse("UDP"), 53, None, endpoints)
    script = render([dns], NODE)
    assert elements(script, "services") == ["10.96.0.53 . udp . 53 : goto svc-kube-system-dns-udp-53"]
    assert chain(script, "svc-kube-system-dns-udp-53")[0].startswith("meta l4proto udp dnat")
    assert elements(script, "nodeports") == []


def test_client_ip_affinity_uses_timed_sets_per_endpoint() -> None:
    script = render([web(2, affinity_timeout=600)], NODE)
    svc = chain(script, "svc-default-web-tcp-80")
    assert svc[:2] == [
        "ip saddr @aff-default-web-tcp-80-10.244.1.5-8080-600 goto ep-default-web-tcp-80-10.244.1.5-8080",
        "ip saddr @aff-default-web-tcp-80-10.244.2.5-8080-600 goto ep-default-web-tcp-80-10.244.2.5-8080",
    ]
    assert svc[2].startswith("numgen random mod 2 vmap {")
    assert chain(script, "ep-default-web-tcp-80-10.244.2.5-8080") == [
        "update @aff-default-web-tcp-80-10.244.2.5-8080-600 { ip saddr }",
        "meta l4proto tcp dnat ip to 10.244.2.5:8080",
    ]
    declaration = "type ipv4_addr; flags dynamic,timeout; timeout 600s;"
    assert f"set aff-default-web-tcp-80-10.244.1.5-8080-600 {{ {declaration} }}" in script


def test_masquerade_rules() -> None:
    post = chain(render([web(1)], NODE), "nat-postrouting")
    assert post[1:] == [
        "meta mark & 0x00010000 == 0x00010000 return",
        "ct status dnat ct original ip daddr @node-addresses masquerade",
        "ct status dnat ct original ip daddr @external-addresses ip saddr != 10.244.0.0/16 masquerade",
        "ct status dnat ip saddr . ip daddr @hairpin masquerade",
        "ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade",
    ]
    assert elements(render([web(1)], NODE), "hairpin") == ["10.244.1.5 . 10.244.1.5"]


def test_without_bridge_netfilter_all_same_bridge_service_traffic_is_masqueraded() -> None:
    config = ProxyConfig((ip("10.251.7.10"),), bridge_netfilter=False)
    post = chain(render([web(1)], config), "nat-postrouting")
    assert 'ct status dnat ip saddr 10.244.0.0/16 oifname "pikube0" masquerade' in post
    assert not any("@hairpin" in line for line in post)


def test_sync_flushes_rebuilds_and_prunes_but_keeps_wanted_affinity_sets() -> None:
    existing = TableObjects.of(
        chains={"svc-gone-x-tcp-1", "services", "nat-prerouting"},
        sets={"hairpin", "no-endpoints", "aff-default-web-tcp-80-10.244.1.5-8080-600", "aff-old-1"},
        maps={"services", "nodeports"},
    )
    lines = render([web(1, affinity_timeout=600)], NODE, existing).splitlines()
    head = lines[: lines.index("table ip pikube {")]
    assert head == [
        "add table ip pikube",
        "flush table ip pikube",
        "flush set ip pikube hairpin",
        "flush set ip pikube no-endpoints",
        "flush map ip pikube nodeports",
        "flush map ip pikube services",
        "delete chain ip pikube svc-gone-x-tcp-1",
        "delete set ip pikube aff-old-1",
    ]


def test_first_run_has_nothing_to_flush_or_delete() -> None:
    lines = render([], NODE).splitlines()
    assert lines[:3] == ["add table ip pikube", "flush table ip pikube", "table ip pikube {"]


def test_clashing_services_first_by_name_wins_and_output_is_deterministic() -> None:
    other = ServiceRule("default", "a-web", ip("10.96.0.10"), Protocol.TCP, 80, None, [(ip("10.244.9.9"), 1)])
    script = render([web(1), other], NODE)
    assert elements(script, "services") == ["10.96.0.10 . tcp . 80 : goto svc-default-a-web-tcp-80"]
    assert elements(script, "nodeports") == ["tcp . 30080 : goto svc-default-web-tcp-80"]
    assert script == render([other, web(1)], NODE)


def test_headless_service_is_ignored() -> None:
    headless = ServiceRule("default", "db", None, Protocol.TCP, 5432, None, [(ip("10.244.1.7"), 5432)])
    assert "svc-default-db" not in render([headless], NODE)


def test_names_are_nft_safe() -> None:
    odd = ServiceRule("Team_A", "web", ip("10.96.0.20"), Protocol.TCP, 80, None, [(ip("10.244.1.5"), 80)])
    assert "chain svc-team_a-web-tcp-80 {" in render([odd], NODE)


def test_external_addresses_dispatch_like_the_cluster_ip_and_are_masqueraded() -> None:
    rule = replace(web(2), external_ips=(ip("192.168.1.50"), ip("192.168.1.10")))
    script = render([rule], NODE)
    assert elements(script, "externals") == ["192.168.1.10 . tcp . 80 : goto svc-default-web-tcp-80",
                                             "192.168.1.50 . tcp . 80 : goto svc-default-web-tcp-80"]
    assert elements(script, "external-addresses") == ["192.168.1.10", "192.168.1.50"]
    assert "ext-default-web" not in script  # Cluster policy: no Local chain


def test_an_external_address_without_endpoints_is_rejected() -> None:
    script = render([replace(web(0), external_ips=(ip("192.168.1.50"),))], NODE)
    assert elements(script, "externals") == []
    assert "192.168.1.50 . tcp . 80" in elements(script, "no-endpoints")


def test_two_services_never_share_an_external_address_and_port() -> None:
    first = replace(web(1), external_ips=(ip("192.168.1.50"),))
    second = ServiceRule("default", "zz-other", ip("10.96.0.11"), Protocol.TCP, 80, None,
                         [(ip("10.244.9.9"), 80)], external_ips=(ip("192.168.1.50"),))
    script = render([second, first], NODE)
    assert elements(script, "externals") == ["192.168.1.50 . tcp . 80 : goto svc-default-web-tcp-80"]


def test_local_policy_keeps_outside_clients_on_this_nodes_endpoints_with_their_address() -> None:
    eps = [(ip("10.244.1.5"), 8080), (ip("10.244.2.5"), 8080)]
    rule = replace(web(0), endpoints=eps, local_endpoints=eps[:1], local_only=True,
                   external_ips=(ip("192.168.1.10"),))
    script = render([rule], NODE)
    assert elements(script, "nodeports") == ["tcp . 30080 : goto ext-default-web-tcp-80"]
    assert elements(script, "externals") == ["192.168.1.10 . tcp . 80 : goto ext-default-web-tcp-80"]
    assert elements(script, "external-addresses") == []  # never masqueraded by address
    assert chain(script, "ext-default-web-tcp-80") == [
        "ip saddr 10.244.0.0/16 goto svc-default-web-tcp-80",
        "fib saddr type local goto svc-default-web-tcp-80",
        "meta mark set meta mark | 0x00010000",
        "goto local-default-web-tcp-80",
    ]
    [dnat] = chain(script, "local-default-web-tcp-80")
    assert "numgen random mod 1 map { 0 : 10.244.1.5 . 8080 }" in dnat
    # The ClusterIP still reaches every endpoint.
    assert "numgen random mod 2" in chain(script, "svc-default-web-tcp-80")[0]


def test_local_policy_without_a_local_endpoint_drops_outside_traffic() -> None:
    rule = replace(web(2), local_only=True, local_endpoints=[])
    script = render([rule], NODE)
    assert chain(script, "ext-default-web-tcp-80")[-1] == "drop"
    assert "local-default-web" not in script
