"""IPAM: stable per pod, never the reserved addresses, persisted atomically, reclaimed when pods vanish."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from agent.network.ipam import Ipam, IpamExhausted, gateway_of

CIDR = IPv4Network("10.244.3.0/24")


def test_gateway_is_first_address_with_prefix() -> None:
    assert gateway_of(CIDR) == IPv4Interface("10.244.3.1/24")


def test_allocate_is_stable_per_pod_and_skips_gateway(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", CIDR)
    first = ipam.allocate("pod-a")
    assert first == IPv4Interface("10.244.3.2/24")
    assert ipam.allocate("pod-a") == first
    assert ipam.allocate("pod-b") == IPv4Interface("10.244.3.3/24")
    assert ipam.lookup("pod-b") == IPv4Interface("10.244.3.3/24")
    assert ipam.lookup("nobody") is None


def test_never_hands_out_network_gateway_or_broadcast(tmp_path: Path) -> None:
    cidr = IPv4Network("10.244.9.0/29")  # 8 addresses, 5 usable
    ipam = Ipam(tmp_path / "ipam.json", cidr)
    given = {ipam.allocate(f"p{i}").ip for i in range(5)}
    assert given == {IPv4Address(f"10.244.9.{i}") for i in range(2, 7)}
    with pytest.raises(IpamExhausted):
        ipam.allocate("one-too-many")


def test_state_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ipam.json"
    ipam = Ipam(path, CIDR)
    a = ipam.allocate("pod-a")
    b = ipam.allocate("pod-b")
    again = Ipam(path, CIDR)
    assert again.allocations() == {"pod-a": a, "pod-b": b}
    assert again.allocate("pod-c") == IPv4Interface("10.244.3.4/24")
    data = json.loads(path.read_text())
    assert data["pod_cidr"] == "10.244.3.0/24"
    assert data["allocations"]["pod-c"] == "10.244.3.4"
    assert [p.name for p in path.parent.iterdir()] == ["ipam.json"]  # no temp files left behind


def test_reconcile_frees_vanished_pods_and_reuses_late(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", CIDR)
    for pod in ("a", "b", "c"):
        ipam.allocate(pod)
    freed = ipam.reconcile(["a", "c"])
    assert freed == {"b": IPv4Address("10.244.3.3")}
    assert set(ipam.allocations()) == {"a", "c"}
    # round-robin: the freed address is not the next one handed out
    assert ipam.allocate("d").ip == IPv4Address("10.244.3.5")
    assert Ipam(tmp_path / "ipam.json", CIDR).lookup("b") is None


def test_release(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", CIDR)
    address = ipam.allocate("a")
    assert ipam.release("a") == address.ip
    assert ipam.release("a") is None


def test_wraps_around_to_freed_addresses(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam.json", IPv4Network("10.244.9.0/29"))
    for i in range(5):
        ipam.allocate(f"p{i}")
    ipam.release("p1")
    assert ipam.allocate("new").ip == IPv4Address("10.244.9.3")


def test_new_pod_cidr_discards_old_allocations(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    Ipam(path, CIDR).allocate("a")
    moved = Ipam(path, IPv4Network("10.244.4.0/24"))
    assert moved.allocations() == {}
    assert moved.allocate("a") == IPv4Interface("10.244.4.2/24")


def test_ignores_reserved_addresses_found_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ipam.json"
    allocations = {"x": "10.244.3.1", "y": "10.244.3.9"}
    path.write_text(json.dumps({"pod_cidr": str(CIDR), "allocations": allocations}))
    assert set(Ipam(path, CIDR).allocations()) == {"y"}


def test_rejects_tiny_cidr(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Ipam(tmp_path / "ipam.json", IPv4Network("10.244.9.0/31"))
