"""Teardown (node deleted, `pikube reset`) leaves no bridge, veth, route, vxlan device or nftables table."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from agent import proxy
from agent.network import Backend, teardown
from agent.proxy import Protocol, ProxyConfig, ServiceRule
from tests.agent.network.lab import Lab, ip, require_netns_tools, root_routes, run

pytestmark = pytest.mark.integration


@pytest.fixture(params=[Backend.HOST_GW, Backend.VXLAN], ids=lambda b: b.value)
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    require_netns_tools()
    lab = Lab(request.param, tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def test_teardown_leaves_nothing_behind(lab: Lab) -> None:
    lab.build(2)
    pods = [lab.add_pod(board, f"p{i}", serve=False) for i, board in enumerate(lab.boards)]
    endpoints = [(pod.address.ip, 8080) for pod in pods]
    web = ServiceRule("default", "web", IPv4Address("10.96.0.10"), Protocol.TCP, 80, 30080, endpoints, 60)
    for board in lab.boards:
        proxy.apply(board.netns, [web], ProxyConfig((board.ip,), bridge_netfilter=board.bridge_netfilter))
    assert lab.ping(pods[0].netns, pods[1].address.ip)

    for board in lab.boards:
        for _ in range(2):  # a second teardown finds nothing to do and does not fail
            teardown(board.netns)
            proxy.teardown(board.netns)

    for board in lab.boards:
        links = sorted(line.split()[0].split("@")[0] for line in ip(board.netns, "-br", "link").splitlines())
        assert links == ["lan0", "lo"], links  # no pikube0, pikube.1 or pod veth
        assert ip(board.netns, "route", "show", "table", "all", "proto", "112") == ""
        assert ip(board.netns, "route", "show", "table", "all", "proto", "113") == ""
        lan_route = f"10.251.7.0/24 dev lan0 proto kernel scope link src {board.ip} "
        assert ip(board.netns, "-4", "route").splitlines() == [lan_route]
        assert run("ip", "netns", "exec", board.netns, "nft", "list", "tables").stdout == ""
    for pod in pods:
        # eth0 went with its host end
        assert [line.split()[0] for line in ip(pod.netns, "-br", "link").splitlines()] == ["lo"]
    assert not lab.ping(pods[0].netns, pods[1].address.ip)
    added = root_routes() - lab.root_routes_before
    assert not [r for r in added if "10.244." in r or "10.96." in r or "10.251.7." in r]


def test_the_cluster_dns_address_is_local_never_a_source_and_removed_by_teardown(lab: Lab) -> None:
    from agent.network import ensure_local_address

    lab.build(2)
    pod = lab.add_pod(lab.boards[1], "p0", serve=False)
    board = lab.boards[0]
    dns = IPv4Address("10.96.0.10")
    for _ in range(2):  # converges
        ensure_local_address(board.netns, dns)
    assert ip(board.netns, "-4", "-o", "addr", "show", "dev", "lo").count("10.96.0.10/32 scope host lo:pkdns") == 1
    # a local address for packets from elsewhere ...
    assert "local 10.96.0.10 dev lo" in ip(board.netns, "route", "show", "table", "local")
    # ... but never the source the node picks for traffic it sends out (masquerade picks sources the same way)
    assert f"src {board.ip}" in ip(board.netns, "route", "get", str(pod.address.ip))
    ensure_local_address(board.netns, IPv4Address("10.96.0.53"))  # a new address replaces ours
    lo = ip(board.netns, "-4", "-o", "addr", "show", "dev", "lo")
    assert "10.96.0.53/32" in lo and "10.96.0.10" not in lo
    teardown(board.netns)
    assert "lo:pkdns" not in ip(board.netns, "-4", "-o", "addr", "show", "dev", "lo")
