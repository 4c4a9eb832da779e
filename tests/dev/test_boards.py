"""Boards on a test LAN: they reach each other, nothing reaches out, nothing is left.

Traffic goes only to loopback and to addresses inside namespaces these tests made;
"no route out" is shown with `ip route get`, which sends nothing.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

import pytest

from core import processes
from pikube.dev import boards as boardslib
from pikube.dev import naming
from pikube.dev.naming import RunId
from tests.conftest import HarnessMade

pytestmark = pytest.mark.integration


def _ping(args: list[str]) -> list[str]:
    return ["busybox", "ping", "-c1", "-W2", *args]


def test_two_boards_reach_each_other_over_the_lan(boards: Any) -> None:
    master, worker = boards.board("master"), boards.board("worker-1")
    there = boardslib.run_in_board(master, _ping([str(worker.address)]))
    back = boardslib.run_in_board(worker, _ping([str(master.address)]))
    assert there.returncode == 0, there.stdout + there.stderr
    assert back.returncode == 0, back.stdout + back.stderr
    assert "1 packets received" in there.stdout


def test_the_root_namespace_reaches_the_master(boards: Any) -> None:
    master = boards.board("master")
    result = subprocess.run(_ping([str(master.address)]), capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_board_has_loopback_and_only_its_lan_route(boards: Any) -> None:
    master = boards.board("master")
    assert boardslib.run_in_board(master, _ping(["127.0.0.1"])).returncode == 0
    routes = boardslib.run_in_board(master, ["ip", "-4", "route", "show"]).stdout.splitlines()
    assert routes == [f"{boards.subnet} dev eth0 proto kernel scope link src {master.address} "]


def test_nothing_in_a_board_can_reach_outside_the_machine(boards: Any) -> None:
    master = boards.board("master")
    for family, address in (("-4", "1.1.1.1"), ("-6", "2606:4700:4700::1111")):
        result = boardslib.run_in_board(master, ["ip", family, "route", "get", address])
        assert result.returncode != 0
        assert "Network is unreachable" in result.stderr
    for address in ("10.244.0.1", "10.96.0.1"):  # pod and service ranges: no route either
        assert "Network is unreachable" in boardslib.run_in_board(master, ["ip", "route", "get", address]).stderr


def test_the_root_namespace_gets_no_route_to_pod_or_service_ranges(boards: Any) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        bridge = ipr.link_lookup(ifname=boards.bridge)[0]
        ours = [r for r in ipr.route("dump", family=2) if r.get("oif") == bridge]
    destinations = {ip_network(f"{r.get('dst')}/{r['dst_len']}", strict=False) for r in ours}
    assert boards.subnet in destinations
    for net in destinations:
        assert net.subnet_of(boards.subnet), f"unexpected route {net} via {boards.bridge}"
        assert not any(net.overlaps(forbidden) for forbidden in naming.FORBIDDEN)


def test_two_lans_coexist(make_boards: Callable[..., Any]) -> None:
    one, two = make_boards(["master"]), make_boards(["master"])
    assert one.run != two.run
    assert not one.subnet.overlaps(two.subnet)
    assert one.board("master").netns != two.board("master").netns
    result = boardslib.run_in_board(one.board("master"), ["ip", "route", "get", str(two.board("master").address)])
    assert "Network is unreachable" in result.stderr  # separate LANs do not see each other


def test_teardown_stops_processes_and_removes_everything(harness_made: HarnessMade) -> None:
    run = naming.new_run_id()
    harness_made.runs.add(run)
    lan = boardslib.create(["master", "worker-1"], run=run)
    try:
        sleeper = subprocess.Popen(boardslib.board_command(lan.board("worker-1"), ["sleep", "300"]))
        time.sleep(0.2)
        assert sleeper.pid in processes.pids_in_netns(boardslib.netns_file(lan.board("worker-1").netns))
        assert len(boardslib.leftovers(run)) == 5  # 2 namespaces, the bridge, 2 veths
    finally:
        boardslib.teardown(run)
    sleeper.wait(timeout=5)  # raises if teardown left it running
    assert boardslib.leftovers(run) == []
    boardslib.teardown(run)  # idempotent


def test_a_failed_create_removes_what_it_made(harness_made: HarnessMade) -> None:
    run = naming.new_run_id()
    harness_made.runs.add(run)
    from pyroute2 import IPRoute

    # A link already holding the second board's veth name makes create fail half-way.
    with IPRoute() as ipr:
        ipr.link("add", ifname=naming.host_link_name(run, 1), kind="bridge")
    with pytest.raises(Exception, match="exists"):
        boardslib.create(["master", "worker-1"], run=run)
    assert boardslib.leftovers(RunId(run)) == []
