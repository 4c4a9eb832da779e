"""The pod network on real namespaces, both backends: reachability, convergence, peers and pods leaving."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from agent.network import (
    Backend,
    ensure_backend,
    ensure_bridge,
    ensure_forwarding,
    ensure_peers,
    ensure_pod_interface,
    pod_interfaces,
    pod_netns,
    prune_pod_interfaces,
    remove_pod_interface,
)
from agent.network.names import host_ifname
from tests.agent.network.lab import Lab, ip, require_netns_tools, root_routes, run

pytestmark = pytest.mark.integration

OURS = ("10.244.", "10.96.", "10.251.7.", "proto 112", "proto 113", "pikube")


@pytest.fixture(scope="module", params=[Backend.HOST_GW, Backend.VXLAN], ids=lambda b: b.value)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns_tools()
    lab = Lab(request.param, tmp_path_factory.mktemp("lab"))
    try:
        lab.build(3)
        for i, board in enumerate(lab.boards):
            lab.add_pod(board, f"p{i}")
        yield lab
    finally:
        lab.close()


def state(netns: str) -> list[str]:
    """What the network code controls in a board, minus counters and timers."""
    commands = [
        ("ip", "-n", netns, "-br", "link"),
        ("ip", "-4", "-n", netns, "-br", "addr"),
        ("ip", "-4", "-n", netns, "route", "show", "table", "all"),  # IPv6 link-local routes come and go
        ("ip", "-n", netns, "neigh", "show", "nud", "permanent"),
        ("bridge", "-n", netns, "fdb", "show", "dev", "pikube.1"),
    ]
    return [run(*argv, check=False).stdout for argv in commands]


def test_pods_on_different_boards_reach_each_other(lab: Lab) -> None:
    pods = [lab.pods[f"p{i}"] for i in range(3)]
    for src in pods:
        for dst in pods:
            if src is not dst:
                assert lab.ping(src.netns, dst.address.ip), f"{src.name} -> {dst.name}"
                assert lab.get(src.netns, f"http://{dst.address.ip}:8080/") == dst.name


def test_board_reaches_remote_pods(lab: Lab) -> None:
    assert lab.get(lab.boards[0].netns, f"http://{lab.pods['p2'].address.ip}:8080/") == "p2"


def test_pod_interface_shape(lab: Lab) -> None:
    pod = lab.pods["p1"]
    mtu = 1450 if lab.backend is Backend.VXLAN else 1500
    link = run("ip", "-n", pod.netns, "-d", "link", "show", "eth0").stdout
    assert f"mtu {mtu} " in link
    assert f"inet {pod.address}" in run("ip", "-n", pod.netns, "addr", "show", "eth0").stdout
    assert ip(pod.netns, "route", "show", "default").startswith("default via 10.244.2.1 dev eth0")
    assert "UP" in run("ip", "-n", pod.netns, "-br", "link", "show", "lo").stdout
    host = run("ip", "-n", pod.board.netns, "-d", "link", "show", host_ifname("p1")).stdout
    assert "master pikube0" in host and "hairpin on" in host and f"mtu {mtu} " in host
    assert ip(pod.board.netns, "-br", "addr", "show", "pikube0").split()[2] == "10.244.2.1/24"
    forwarding = run("ip", "netns", "exec", pod.board.netns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout
    assert forwarding.strip() == "1"


def test_backend_specifics(lab: Lab) -> None:
    board = lab.boards[0]
    routes = run("ip", "-n", board.netns, "route", "show", "proto", "112").stdout.splitlines()
    if lab.backend is Backend.HOST_GW:
        assert sorted(routes) == [
            "10.244.2.0/24 via 10.251.7.11 dev lan0 ",
            "10.244.3.0/24 via 10.251.7.12 dev lan0 ",
        ]
        assert run("ip", "-n", board.netns, "link", "show", "pikube.1", check=False).returncode != 0
        return
    assert sorted(routes) == [
        "10.244.2.0/24 via 10.244.2.1 dev pikube.1 onlink ",
        "10.244.3.0/24 via 10.244.3.1 dev pikube.1 onlink ",
    ]
    vx = run("ip", "-n", board.netns, "-d", "link", "show", "pikube.1").stdout
    assert "vxlan id 1 local 10.251.7.10 dev lan0" in vx and "dstport 8472" in vx and "nolearning" in vx
    assert "mtu 1450" in vx and f"link/ether {board.info.vtep_mac}" in vx
    fdb = run("bridge", "-n", board.netns, "fdb", "show", "dev", "pikube.1").stdout
    assert f"{lab.boards[1].info.vtep_mac} dst 10.251.7.11" in fdb
    neigh = run("ip", "-n", board.netns, "neigh", "show", "dev", "pikube.1").stdout
    assert f"10.244.3.1 lladdr {lab.boards[2].info.vtep_mac} PERMANENT" in neigh


def test_ensure_functions_converge(lab: Lab) -> None:
    board = lab.boards[1]
    pod = lab.pods["p1"]
    before = state(board.netns)
    for _ in range(2):
        assert ensure_forwarding(board.netns) == board.bridge_netfilter
        assert ensure_backend(board.netns, lab.backend, board.ip) == board.info
        assert ensure_bridge(board.netns, board.pod_cidr, board.info.mtu) == board.gateway
        ensure_peers(board.netns, lab.backend, lab.peers())
        gateway, mtu = board.gateway.ip, board.info.mtu
        again = ensure_pod_interface(board.netns, pod.netns, "p1", pod.address, gateway, mtu)
        assert again.address == pod.address
    assert state(board.netns) == before
    assert lab.get(lab.pods["p0"].netns, f"http://{pod.address.ip}:8080/") == "p1"


def test_foreign_routes_are_left_alone(lab: Lab) -> None:
    board = lab.boards[0]
    run("ip", "-n", board.netns, "route", "add", "10.250.9.0/24", "via", "10.251.7.11", "proto", "static")
    try:
        ensure_peers(board.netns, lab.backend, lab.peers()[:1])
        ensure_peers(board.netns, lab.backend, lab.peers())
        assert "10.250.9.0/24 via 10.251.7.11" in run("ip", "-n", board.netns, "route").stdout
    finally:
        run("ip", "-n", board.netns, "route", "del", "10.250.9.0/24")


def test_removing_a_peer_removes_its_routes(lab: Lab) -> None:
    board, gone = lab.boards[0], lab.boards[2]
    try:
        ensure_peers(board.netns, lab.backend, [b.peer() for b in lab.boards if b is not gone])
        routes = run("ip", "-n", board.netns, "route").stdout
        assert "10.244.3.0/24" not in routes and "10.244.2.0/24" in routes
        if lab.backend is Backend.VXLAN:
            fdb = run("bridge", "-n", board.netns, "fdb", "show", "dev", "pikube.1").stdout
            assert "10.251.7.12" not in fdb
            assert "10.244.3.1" not in ip(board.netns, "neigh", "show", "dev", "pikube.1")
        assert not lab.ping(lab.pods["p0"].netns, lab.pods["p2"].address.ip)
        assert lab.ping(lab.pods["p0"].netns, lab.pods["p1"].address.ip)
    finally:
        ensure_peers(board.netns, lab.backend, lab.peers())
    assert lab.ping(lab.pods["p0"].netns, lab.pods["p2"].address.ip)


def test_repairs_a_pod_whose_eth0_vanished(lab: Lab) -> None:
    pod = lab.pods["p2"]
    board = pod.board
    run("ip", "-n", pod.netns, "link", "del", "eth0")  # takes the host end with it
    assert host_ifname("p2") not in pod_interfaces(board.netns)
    ensure_pod_interface(board.netns, pod.netns, "p2", pod.address, board.gateway.ip, board.info.mtu)
    assert lab.get(lab.pods["p0"].netns, f"http://{pod.address.ip}:8080/") == "p2"


def test_pod_removal_frees_interface_and_address(lab: Lab) -> None:
    board = lab.boards[0]
    extra = lab.add_pod(board, "gone", serve=False)
    assert host_ifname("gone") in pod_interfaces(board.netns)
    assert remove_pod_interface(board.netns, "gone")
    assert not remove_pod_interface(board.netns, "gone")
    assert host_ifname("gone") not in pod_interfaces(board.netns)
    assert "eth0" not in run("ip", "-n", extra.netns, "-br", "link").stdout
    assert board.ipam.reconcile(["p0"]) == {"gone": extra.address.ip}
    # a veth whose pod vanished without remove_pod_interface is pruned by id
    stray = lab.add_pod(board, "stray", serve=False)
    assert prune_pod_interfaces(board.netns, ["p0"]) == [host_ifname("stray")]
    assert pod_interfaces(board.netns) == [host_ifname("p0")]
    assert board.ipam.reconcile(["p0"]) == {"stray": stray.address.ip}


def test_pod_found_by_the_pid_that_holds_its_namespace(lab: Lab) -> None:
    """Like a pause container: no name under /run/netns, only /proc/<pid>/ns/net."""
    board = lab.boards[1]
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{holder.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare did not enter a new namespace"
            time.sleep(0.01)
        address = board.ipam.allocate("paused")
        ensure_pod_interface(board.netns, pod_netns(holder.pid), "paused", address, board.gateway.ip, 1400)
        assert lab.ping(lab.pods["p0"].netns, address.ip)
        assert remove_pod_interface(board.netns, "paused")
    finally:
        holder.kill()
        holder.wait()
        board.ipam.release("paused")


def test_root_namespace_untouched(lab: Lab) -> None:
    added = root_routes() - lab.root_routes_before
    assert not [route for route in added if any(mark in route for mark in OURS)]
    assert not [route for route in root_routes() if "10.244." in route or "10.96." in route]
    assert not [line for line in run("ip", "-br", "link").stdout.splitlines() if "pikube" in line]
