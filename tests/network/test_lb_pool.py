"""The LoadBalancer address-pool mode on three real agents: one board answers ARP for a pool address, every
board DNATs it, and when that board's agent dies the next board takes the address over.

The pool is three unused addresses at the top of the test LAN; the master runs with `--lb-pool` and a short
`--node-monitor-grace-seconds` so the failover fits in a test. A host on the LAN that is no board (`client`)
is the user. Traffic stays on the test LAN.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.network.conftest import BOARDS, HTTP_PORT, NetCluster, cluster_up, new_name, wait_for

pytestmark = pytest.mark.integration
GRACE = 20.0  # --node-monitor-grace-seconds (agents renew their Lease every 10 s)
PERIOD = 5.0  # the node lifecycle controller's look at heartbeats
Obj = dict[str, Any]


def _pool(lan: Any) -> list[str]:
    return [str(lan.subnet[-4]), str(lan.subnet[-3]), str(lan.subnet[-2])]


@pytest.fixture(scope="module")
def pool_cluster(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
                 dev_images: Any) -> Iterator[NetCluster]:
    def flags(lan: Any) -> list[str]:
        first, *_, last = _pool(lan)
        return ["--lb-pool", f"{first}-{last}", "--node-monitor-grace-seconds", str(GRACE)]

    with cluster_up("host-gw", tmp_path_factory.mktemp("lb-pool"), docker_engine.host, docker_client, dev_images,
                    master_flags=flags) as c:
        yield c


def _service(c: NetCluster, name: str, port: int, **spec: Any) -> Obj:
    body = {"type": "LoadBalancer", "selector": {"app": "pool-web"}, "ports": [{"port": port,
                                                                                "targetPort": HTTP_PORT}], **spec}
    return c.api("POST", "/api/v1/namespaces/default/services",
                 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body})


def _ingress(c: NetCluster, name: str) -> list[str]:
    svc = c.get(f"/api/v1/namespaces/default/services/{name}") or {}
    return [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


def _announcer(c: NetCluster, address: str) -> list[str]:
    """The boards whose agent logs say they announce `address` and have not stopped since."""
    found = []
    for board in c.boards:
        log = (c.workdir / f"agent-{board}.log").read_text(errors="replace")
        start, stop = log.rfind(f"ARP: announcing {address} "), log.rfind(f"ARP: no longer announcing {address}")
        if start > stop:
            found.append(board)
    return found


def test_a_pool_address_is_announced_by_one_board_and_moves_when_it_dies(pool_cluster: NetCluster) -> None:
    c = pool_cluster
    pool = _pool(c.lan)
    for board in ("b2", "b3"):
        c.create_pod(f"pool-web-{board}", board, {"app": "pool-web"})
    c.wait_ready("pool-web-b2", "pool-web-b3")
    name = new_name("pool")
    _service(c, name, 8600)
    [vip] = wait_for("a pool address", lambda: _ingress(c, name) or None, 10)
    assert vip == pool[0]
    url = f"http://{vip}:8600/"
    answer = wait_for("the pool address answers on the LAN",
                      lambda: c.fetch_from_board("client", url) or None, 15)
    assert answer in ("pool-web-b2", "pool-web-b3")
    [leader] = wait_for("one announcing board", lambda: _announcer(c, vip) if len(_announcer(c, vip)) == 1
                        else None, 10)
    for board in BOARDS:  # never on an interface: host services must not answer on it
        assert vip not in c.in_board(board, "ip", "-4", "addr").stdout

    # A second service gets the next address; one asking for a held address waits with a reason.
    second = new_name("pool")
    _service(c, second, 8601)
    wait_for("the next address", lambda: _ingress(c, second) == [pool[1]], 10)
    asks = new_name("pool")
    _service(c, asks, 8602, loadBalancerIP=vip)
    wait_for("the Warning", lambda: any(
        e.get("reason") == "UnAvailableLoadBalancer" and e["involvedObject"]["name"] == asks
        for e in (c.get("/api/v1/namespaces/default/events") or {}).get("items") or []), 10)
    assert _ingress(c, asks) == []

    # The announcing board's agent dies: the next board in the ranking answers ARP, no rule changes.
    stopped = time.monotonic()
    c.agents[leader].stop(signal.SIGKILL)
    try:
        def answered_by_another() -> str | None:
            got = c.fetch_from_board("client", url, seconds=1)
            heirs = [b for b in _announcer(c, vip) if b != leader]
            return got if got and heirs else None

        wait_for("the address served again from another board", answered_by_another, GRACE + PERIOD + 30, 0.2)
        elapsed = time.monotonic() - stopped
        print(f"pool address back {elapsed:.1f} s after the announcing board's agent died "
              f"(grace {GRACE:.0f} s + lifecycle period {PERIOD:.0f} s)")
        assert elapsed <= GRACE + PERIOD + 2 + 3, f"failover took {elapsed:.1f} s"
        for board in BOARDS:
            assert vip not in c.in_board(board, "ip", "-4", "addr").stdout
    finally:
        c.start_agent(leader)
    for svc in (name, second, asks):
        c.api("DELETE", f"/api/v1/namespaces/default/services/{svc}")
    wait_for("released", lambda: c.fetch_from_board("client", url, seconds=1) == "", 15)
