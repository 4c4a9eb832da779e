"""Run ids, names and LAN ranges: pure logic, no root needed."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from pikube.dev import naming
from pikube.dev.errors import DevError
from pikube.dev.naming import RunId


def test_run_id_is_six_hex_digits() -> None:
    assert naming.new_run_id(lambda bits: 0xABC) == "000abc"
    assert naming.new_run_id(lambda bits: (1 << bits) - 1) == "ffffff"
    fresh = naming.new_run_id()
    assert naming.is_run_id(fresh)
    assert not naming.is_run_id("abc12")
    assert not naming.is_run_id("ABC123")


def test_board_names_start_with_master() -> None:
    assert naming.board_names(0) == ["master"]
    assert naming.board_names(2) == ["master", "worker-1", "worker-2"]
    assert naming.board_names(1, masters=3) == ["master", "master-2", "master-3", "worker-1"]


def test_names_carry_the_run_and_fit_the_kernel_limit() -> None:
    run = RunId("0a1b2c")
    assert naming.netns_name(run, "worker-1") == "pikube-0a1b2c-worker-1"
    assert naming.bridge_name(run) == "pkd-0a1b2c"
    for index in range(201):
        assert len(naming.host_link_name(run, index)) <= naming.IFNAMSIZ
    with pytest.raises(ValueError):
        naming.host_link_name(run, 123456)


def test_names_parse_back_to_their_run_and_nothing_else_matches() -> None:
    run = RunId("0a1b2c")
    assert naming.run_of_netns(naming.netns_name(run, "master")) == run
    assert naming.run_of_link(naming.bridge_name(run)) == run
    assert naming.run_of_link(naming.host_link_name(run, 3)) == run
    for other in ("pikube0", "pkd-0a1b2", "pkd-0a1b2cx", "eth0", "pkd-0a1b2c-x", "vxlan.1"):
        assert naming.run_of_link(other) is None
    assert naming.run_of_netns("pikube-nothex-master") is None


def test_free_subnets_avoid_what_is_in_use_and_the_cluster_ranges() -> None:
    free = naming.free_subnets([IPv4Network("10.250.0.0/17"), IPv4Network("10.250.200.0/24")])
    assert len(free) == 127
    assert IPv4Network("10.250.200.0/24") not in free
    for net in free:
        assert net.prefixlen == 24
        assert net.subnet_of(naming.LAN_POOL)
        assert not net.overlaps(naming.POD_CIDR)
        assert not net.overlaps(naming.SERVICE_CIDR)
        assert net.network_address >= IPv4Address("10.250.128.0")


def test_a_default_route_does_not_block_the_pool() -> None:
    # Only specific routes count; the caller leaves out the default route (/0).
    assert len(naming.free_subnets([IPv4Network("192.0.2.0/24")])) == 256


def test_pick_subnet_uses_the_chooser_and_says_when_the_pool_is_full() -> None:
    first = naming.pick_subnet([IPv4Network("10.250.0.0/24")], choose=lambda nets: nets[0])
    assert first == IPv4Network("10.250.1.0/24")
    with pytest.raises(DevError, match=r"every /24 in 10\.250\.0\.0/16 is in use"):
        naming.pick_subnet([IPv4Network("10.0.0.0/8")])


def test_addresses_on_the_lan() -> None:
    lan = IPv4Network("10.250.7.0/24")
    assert naming.board_address(lan, 0) == IPv4Address("10.250.7.1")
    assert naming.board_address(lan, 2) == IPv4Address("10.250.7.3")
    assert naming.host_address(lan) == IPv4Address("10.250.7.254")
