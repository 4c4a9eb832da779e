"""A board whose Docker manages iptables (FORWARD policy DROP, a DOCKER-USER chain) still forwards pod traffic."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from agent.network import Backend, ensure_docker_forward, remove_docker_forward, teardown
from tests.agent.network.lab import Lab, require_netns_tools, run
from tests.conftest import require

pytestmark = pytest.mark.integration
CLUSTER = IPv4Network("10.244.0.0/16")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_netns_tools()
    require(shutil.which("iptables") is not None, "iptables is not installed")
    lab = Lab(Backend.HOST_GW, tmp_path)
    try:
        lab.build(2)
        yield lab
    finally:
        lab.close()


def iptables(netns: str, *argv: str) -> str:
    return run("ip", "netns", "exec", netns, "iptables", "-w", "5", "-t", "filter", *argv).stdout


def test_pod_traffic_passes_dockers_forward_drop(lab: Lab) -> None:
    b0, b1 = lab.boards
    assert not ensure_docker_forward(b0.netns, CLUSTER)  # no Docker chain: nothing to do, nothing made
    assert "table" not in run("ip", "netns", "exec", b0.netns, "nft", "list", "tables").stdout
    p0, p1 = lab.add_pod(b0, "p0"), lab.add_pod(b1, "p1")
    url = f"http://{p1.address.ip}:8080/"
    assert lab.get(p0.netns, url) == "p1"
    # What dockerd does at start when it manages iptables:
    iptables(b0.netns, "-P", "FORWARD", "DROP")
    iptables(b0.netns, "-N", "DOCKER-USER")
    iptables(b0.netns, "-A", "FORWARD", "-j", "DOCKER-USER")
    assert lab.get(p0.netns, url, timeout=1) is None
    for _ in range(2):
        assert ensure_docker_forward(b0.netns, CLUSTER)
    rules = iptables(b0.netns, "-S", "DOCKER-USER")
    assert rules.count("pikube pod network") == 2, rules
    assert lab.get(p0.netns, url) == "p1"
    teardown(b0.netns)
    rules = iptables(b0.netns, "-S", "DOCKER-USER")
    assert "pikube" not in rules and "-N DOCKER-USER" in rules  # Docker's chain stays, only ours went
    assert remove_docker_forward(b0.netns) == 0
