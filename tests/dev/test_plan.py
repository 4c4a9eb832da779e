"""Planning a LAN and finding boards in it: pure logic, nothing created."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from pikube.dev import boards
from pikube.dev.errors import DevError
from pikube.dev.naming import RunId

RUN = RunId("123abc")


def test_plan_gives_each_board_its_namespace_address_and_link() -> None:
    lan = boards.plan(RUN, ["master", "worker-1"], IPv4Network("10.250.3.0/24"))
    assert lan.bridge == "pkd-123abc"
    assert lan.host_address == IPv4Address("10.250.3.254")
    master, worker = lan.boards
    assert (master.netns, master.address, master.host_link) == (
        "pikube-123abc-master",
        IPv4Address("10.250.3.1"),
        "pkd-123abc-0",
    )
    assert worker.address == IPv4Address("10.250.3.2")
    assert boards.Lan.from_dict(lan.to_dict()) == lan


def test_plan_refuses_duplicate_or_odd_names() -> None:
    with pytest.raises(DevError, match="unique"):
        boards.plan(RUN, ["master", "master"], IPv4Network("10.250.3.0/24"))
    for odd in ("no/slash", "Upper", "-dash", "x" * 40, ""):
        with pytest.raises(DevError, match="lowercase letters"):
            boards.plan(RUN, ["master", odd], IPv4Network("10.250.3.0/24"))


def test_unknown_board_names_the_known_ones() -> None:
    lan = boards.plan(RUN, ["master", "worker-1"], IPv4Network("10.250.3.0/24"))
    with pytest.raises(DevError, match=r"no board named 'worker-9'.*master, worker-1\.$"):
        lan.board("worker-9")


def test_board_command_wraps_in_ip_netns_exec() -> None:
    board = boards.plan(RUN, ["master"], IPv4Network("10.250.3.0/24")).boards[0]
    assert boards.board_command(board, ["ip", "addr"]) == ["ip", "netns", "exec", "pikube-123abc-master", "ip", "addr"]
