"""Services on real namespaces, both backends: ClusterIP spread, NodePort, reject, hairpin, affinity."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from agent.network import (
    Backend,
    ensure_backend,
    ensure_bridge,
    ensure_forwarding,
    ensure_peers,
    ensure_pod_interface,
)
from agent.network.netns import run_in, write_sysctl
from agent.proxy import Protocol, ProxyConfig, ServiceRule, apply, existing_objects
from tests.agent.network.lab import BUSYBOX, HTTP_PORT, Lab, Pod, ip, require_netns_tools, run

pytestmark = pytest.mark.integration

WEB, EMPTY, LOCAL, SELF, STICKY, DNS, STREAM = (IPv4Address(f"10.96.0.{i}") for i in range(10, 17))
STREAM_PORT = 9000


def rule(name: str, cluster_ip: IPv4Address, pods: list[Pod], **extra: int) -> ServiceRule:
    endpoints = [(pod.address.ip, HTTP_PORT) for pod in pods]
    return ServiceRule("default", name, cluster_ip, Protocol.TCP, 80, endpoints=endpoints, **extra)


def services(lab: Lab, web: list[Pod] | None = None) -> list[ServiceRule]:
    p = lab.pods
    web = [p["p1"], p["p2"]] if web is None else web
    return [
        rule("web", WEB, web, node_port=30080),
        rule("empty", EMPTY, [], node_port=30081),
        rule("local", LOCAL, [p["p0b"]]),
        rule("self", SELF, [p["p0a"]]),
        rule("sticky", STICKY, [p["p1"], p["p2"]], affinity_timeout=600),
        # no UDP client in this busybox: the kernel accepting UDP rules is what is shown here
        ServiceRule("default", "dns", DNS, Protocol.UDP, 53, 30053, [(p["p1"].address.ip, 53)]),
        ServiceRule("default", "dns-none", DNS, Protocol.UDP, 54, None, []),
        ServiceRule("default", "stream", STREAM, Protocol.TCP, 80, None, [(p["p1"].address.ip, STREAM_PORT)]),
    ]


def sync(lab: Lab, rules: list[ServiceRule]) -> None:
    for board in lab.boards:
        apply(board.netns, rules, ProxyConfig((board.ip,), bridge_netfilter=board.bridge_netfilter))


@pytest.fixture(scope="module", params=[Backend.HOST_GW, Backend.VXLAN], ids=lambda b: b.value)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_netns_tools()
    lab = Lab(request.param, tmp_path_factory.mktemp("lab"))
    try:
        lab.build(4)  # b3 stays without pods: its bridge has no carrier, services must still work
        b0, b1, b2, _ = lab.boards
        for board, name in ((b0, "p0a"), (b0, "p0b"), (b1, "p1"), (b2, "p2")):
            lab.add_pod(board, name)
        lab.client()
        sync(lab, services(lab))
        yield lab
    finally:
        lab.close()


def answers(lab: Lab, netns: str, url: str, count: int) -> Counter[str | None]:
    return Counter(lab.get(netns, url) for _ in range(count))


def test_cluster_ip_spreads_over_endpoints_on_other_boards(lab: Lab) -> None:
    seen = answers(lab, lab.pods["p0a"].netns, f"http://{WEB}/", 24)
    assert set(seen) == {"p1", "p2"}, seen


def test_board_itself_reaches_cluster_ip(lab: Lab) -> None:
    for board in lab.boards:
        assert set(answers(lab, board.netns, f"http://{WEB}/", 24)) == {"p1", "p2"}


def test_node_port_answers_on_every_board_address(lab: Lab) -> None:
    client = f"{lab.prefix}-client"
    for board in lab.boards:
        seen = answers(lab, client, f"http://{board.ip}:30080/", 24)
        assert set(seen) == {"p1", "p2"}, (board.name, seen)


def refused_at_once(lab: Lab, netns: str, url: str) -> None:
    start = time.monotonic()
    proc = lab.fetch(netns, url, timeout=5)
    elapsed = time.monotonic() - start
    assert proc is not None and proc.returncode != 0, "a service without endpoints must not answer"
    assert "refused" in proc.stderr, proc.stderr
    assert elapsed < 1.5, f"took {elapsed:.1f}s: hung instead of rejecting"


def test_service_without_endpoints_rejects_at_once(lab: Lab) -> None:
    refused_at_once(lab, lab.pods["p0a"].netns, f"http://{EMPTY}/")
    refused_at_once(lab, lab.boards[1].netns, f"http://{EMPTY}/")
    refused_at_once(lab, f"{lab.prefix}-client", f"http://{lab.boards[2].ip}:30081/")


def test_pod_reaches_service_on_its_own_bridge_and_itself(lab: Lab) -> None:
    client = lab.pods["p0a"].netns
    assert lab.get(client, f"http://{LOCAL}/") == "p0b"
    assert lab.get(client, f"http://{SELF}/") == "p0a"  # hairpin


def test_same_bridge_without_bridge_netfilter_falls_back_to_masquerade(lab: Lab) -> None:
    board = lab.boards[0]
    rules = services(lab)
    try:
        write_sysctl(board.netns, "net.bridge.bridge-nf-call-iptables", "0")
        run("ip", "-n", board.netns, "link", "set", "pikube0", "type", "bridge", "nf_call_iptables", "0")
        apply(board.netns, rules, ProxyConfig((board.ip,), bridge_netfilter=False))
        client = lab.pods["p0a"].netns
        assert lab.get(client, f"http://{LOCAL}/") == "p0b"
        assert lab.get(client, f"http://{SELF}/") == "p0a"
        assert set(answers(lab, client, f"http://{WEB}/", 8)) <= {"p1", "p2"}
    finally:
        write_sysctl(board.netns, "net.bridge.bridge-nf-call-iptables", "1")
        run("ip", "-n", board.netns, "link", "set", "pikube0", "type", "bridge", "nf_call_iptables", "1")
        apply(board.netns, rules, ProxyConfig((board.ip,), bridge_netfilter=board.bridge_netfilter))


def test_client_ip_affinity_sticks_and_survives_a_resync(lab: Lab) -> None:
    client = lab.pods["p0b"].netns
    seen = answers(lab, client, f"http://{STICKY}/", 8)
    assert len(seen) == 1 and set(seen) <= {"p1", "p2"}, seen
    sync(lab, services(lab))
    assert set(answers(lab, client, f"http://{STICKY}/", 4)) == set(seen)
    board = lab.boards[0]
    sets = [name for name in existing_objects(board.netns).sets if name.startswith("aff-default-sticky")]
    listed = "".join(run_in(board.netns, ["nft", "list", "set", "ip", "pikube", name]) for name in sets)
    assert str(lab.pods["p0b"].address.ip) in listed


def test_endpoint_changes_take_effect_on_next_sync(lab: Lab) -> None:
    try:
        sync(lab, services(lab, web=[lab.pods["p2"]]))
        assert set(answers(lab, lab.pods["p0a"].netns, f"http://{WEB}/", 8)) == {"p2"}
        sync(lab, services(lab, web=[]))
        refused_at_once(lab, lab.pods["p0a"].netns, f"http://{WEB}/")
    finally:
        sync(lab, services(lab))
    assert set(answers(lab, lab.pods["p0a"].netns, f"http://{WEB}/", 24)) == {"p1", "p2"}


def test_pod_traffic_leaving_the_pod_network_is_masqueraded(lab: Lab) -> None:
    # the LAN client has no route back to 10.244.0.0/16: only a masqueraded request gets its answer
    assert "10.244" not in ip(f"{lab.prefix}-client", "route")
    assert lab.get(lab.pods["p1"].netns, f"http://10.251.7.200:{HTTP_PORT}/") == "client"


def test_service_route_lives_in_the_board_only(lab: Lab) -> None:
    assert "10.96.0.0/12 dev pikube0 proto 113 scope link" in ip(lab.boards[0].netns, "route")
    assert "10.96." not in run("ip", "route", "show", "table", "all").stdout


def restart_agents(lab: Lab) -> None:
    """What a restarted agent does: every ensure again, then a full proxy sync."""
    for board in lab.boards:
        assert ensure_forwarding(board.netns) == board.bridge_netfilter
        ensure_backend(board.netns, lab.backend, board.ip)
        ensure_bridge(board.netns, board.pod_cidr, board.info.mtu)
        ensure_peers(board.netns, lab.backend, lab.peers())
    for pod in lab.pods.values():
        board = pod.board
        ensure_pod_interface(board.netns, pod.netns, pod.name, pod.address, board.gateway.ip, board.info.mtu)
    sync(lab, services(lab))


def test_established_connection_survives_an_agent_restart(lab: Lab, tmp_path: Path) -> None:
    received = tmp_path / "received"
    server_argv = [BUSYBOX, "nc", "-l", "-p", str(STREAM_PORT)]
    with received.open("wb") as sink:  # busybox nc quits when its stdin ends: keep the server's open
        argv = ["ip", "netns", "exec", lab.pods["p1"].netns, *server_argv]
        server = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=sink)
    client = None
    try:
        deadline = time.monotonic() + 15
        while b"before" not in received.read_bytes():
            assert time.monotonic() < deadline, "no connection through the ClusterIP"
            if client is None or client.poll() is not None:  # refused while the server was starting
                argv = ["ip", "netns", "exec", lab.pods["p0a"].netns, BUSYBOX, "nc", str(STREAM), "80"]
                client = subprocess.Popen(argv, stdin=subprocess.PIPE)
                assert client.stdin is not None
                client.stdin.write(b"before\n")
                client.stdin.flush()
            time.sleep(0.05)
        restart_agents(lab)
        assert client is not None and client.stdin is not None
        client.stdin.write(b"after\n")
        client.stdin.flush()
        deadline = time.monotonic() + 15
        while b"after" not in received.read_bytes():
            assert time.monotonic() < deadline, f"connection broken by the restart: {received.read_bytes()!r}"
            time.sleep(0.05)
    finally:
        for proc in (client, server):
            if proc is not None:
                proc.kill()
                proc.wait()
