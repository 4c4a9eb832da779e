"""The service load balancer's decisions: which boards' addresses a LoadBalancer Service gets, and who waits."""

from __future__ import annotations

from typing import Any

from master.controllers.servicelb import ENABLE_LABEL, assign, eligible_nodes

Obj = dict[str, Any]


def node(name: str, ip: str, ready: bool = True, unschedulable: bool = False, label: str | None = None) -> Obj:
    labels = {ENABLE_LABEL: label} if label is not None else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"unschedulable": unschedulable},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def lb(name: str, created: str, ports: list[tuple[str, int]], **spec: Any) -> Obj:
    return {"metadata": {"namespace": "default", "name": name, "creationTimestamp": created},
            "spec": {"type": "LoadBalancer", "ports": [{"protocol": p, "port": n} for p, n in ports], **spec}}


BOARDS = [node("b1", "192.168.1.11"), node("b2", "192.168.1.2"), node("b3", "192.168.1.3", ready=False),
          node("b4", "192.168.1.4", unschedulable=True)]


def test_ingress_is_every_ready_schedulable_board_in_address_order() -> None:
    ingress, blocked = assign([lb("web", "2026-01-01T00:00:00Z", [("TCP", 80)])], BOARDS, {})
    assert ingress == {("default", "web"): ["192.168.1.2", "192.168.1.11"]}
    assert blocked == {}


def test_enablelb_labels_restrict_the_pool_once_any_board_has_one() -> None:
    boards = [node("b1", "10.0.0.1", label="true"), node("b2", "10.0.0.2", label="false"), node("b3", "10.0.0.3")]
    assert [n["metadata"]["name"] for n in eligible_nodes(boards)] == ["b1"]


def test_the_older_service_keeps_a_port_and_the_later_one_waits_with_a_reason() -> None:
    first = lb("first", "2026-01-01T00:00:00Z", [("TCP", 80)])
    second = lb("second", "2026-01-02T00:00:00Z", [("TCP", 443), ("TCP", 80)])
    udp = lb("dns", "2026-01-03T00:00:00Z", [("UDP", 80)])
    ingress, blocked = assign([second, udp, first], BOARDS, {})
    assert ingress[("default", "first")] and ingress[("default", "dns")]
    assert ingress[("default", "second")] == []
    assert "80/TCP" in blocked[("default", "second")] and "default/first" in blocked[("default", "second")]
    # The holder gone, the port is free.
    ingress, blocked = assign([second, udp], BOARDS, {})
    assert ingress[("default", "second")] == ["192.168.1.2", "192.168.1.11"] and not blocked


def test_local_policy_lists_only_boards_with_a_ready_endpoint() -> None:
    svc = lb("web", "2026-01-01T00:00:00Z", [("TCP", 80)], externalTrafficPolicy="Local")
    eps = {("default", "web"): {"subsets": [{"addresses": [{"ip": "10.244.1.5", "nodeName": "b1"}],
                                             "notReadyAddresses": [{"ip": "10.244.2.5", "nodeName": "b2"}]}]}}
    ingress, _ = assign([svc], BOARDS, eps)
    assert ingress[("default", "web")] == ["192.168.1.11"]


def test_other_implementations_and_other_types_are_not_assigned() -> None:
    other = lb("metallb", "2026-01-01T00:00:00Z", [("TCP", 80)], loadBalancerClass="metallb.io/l2")
    plain = {"metadata": {"namespace": "default", "name": "plain"}, "spec": {"type": "ClusterIP",
                                                                              "ports": [{"port": 80}]}}
    ingress, blocked = assign([other, plain, lb("web", "2026-01-02T00:00:00Z", [("TCP", 80)])], BOARDS, {})
    assert set(ingress) == {("default", "web")} and not blocked


# --- against a real master with three simulated boards (controllers running) ------------------------------------

def _ingress(c: Any, ns: str, name: str) -> list[str]:
    svc = c.get("v1", "services", ns, name) or {}
    return [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


def _service(name: str, port: int, kind: str = "LoadBalancer", **spec: Any) -> Obj:
    return {"metadata": {"name": name},
            "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": port, "targetPort": 8080}], **spec}}


def test_load_balancers_get_the_boards_addresses_and_wait_for_a_held_port(cluster: Any) -> None:
    import pytest

    from core import errors
    from pikube.sim.api import resource_path
    from tests.master.controllers.conftest import wait_for

    c = cluster
    ns = c.namespace("lb")
    services = resource_path("v1", "services", ns)
    boards = sorted(n["status"]["addresses"][0]["address"]
                    for n in c.admin.get(resource_path("v1", "nodes"))["items"])
    c.admin.create(services, _service("first", 80))
    wait_for(lambda: sorted(_ingress(c, ns, "first")) == boards, 5, "the boards' addresses as ingress")
    out = c.kubectl("get", "svc", "first", "-n", ns, "--no-headers").stdout.split()
    assert out[3] == ",".join(_ingress(c, ns, "first"))  # EXTERNAL-IP
    assert out[4].startswith("80:3")  # a NodePort is allocated, as Kubernetes does

    c.admin.create(services, _service("second", 80))
    wait_for(lambda: any(e.get("reason") == "UnAvailableLoadBalancer" and e["involvedObject"]["name"] == "second"
                         for e in c.admin.get(resource_path("v1", "events", ns))["items"]), 5, "the Warning")
    assert _ingress(c, ns, "second") == []
    assert "<pending>" in c.kubectl("get", "svc", "second", "-n", ns).stdout
    event = next(e for e in c.admin.get(resource_path("v1", "events", ns))["items"]
                 if e["involvedObject"]["name"] == "second")
    assert f"{ns}/first" in event["message"] and "80/TCP" in event["message"]

    c.admin.delete(resource_path("v1", "services", ns, "first"))
    wait_for(lambda: sorted(_ingress(c, ns, "second")) == boards, 5, "the freed port taken")

    # No longer a LoadBalancer: the addresses are released.
    c.admin.patch(resource_path("v1", "services", ns, "second"), {"spec": {"type": "ClusterIP"}})
    wait_for(lambda: _ingress(c, ns, "second") == [], 5, "ingress released")

    # A LoadBalancer may go without NodePorts; it still gets the boards' addresses.
    bare = c.admin.create(services, _service("bare", 8080, allocateLoadBalancerNodePorts=False))
    assert "nodePort" not in bare["spec"]["ports"][0]
    wait_for(lambda: sorted(_ingress(c, ns, "bare")) == boards, 5, "ingress without NodePorts")

    # Bad external IPs: a field error each, nothing stored.
    for bad, words in (("10.244.3.7", "pod network"), ("10.96.0.99", "service range"),
                       ("300.1.1.1", "must be a valid IP address"), ("127.0.0.1", "loopback")):
        with pytest.raises(errors.Invalid) as caught:
            c.admin.create(services, _service("bad", 80, kind="ClusterIP", externalIPs=[bad]))
        assert "spec.externalIPs[0]" in caught.value.message and words in caught.value.message, caught.value.message
    assert c.get("v1", "services", ns, "bad") is None


def test_pool_mode_gives_each_service_an_address_and_keeps_it() -> None:
    from ipaddress import IPv4Address

    pool = [IPv4Address("192.168.1.240"), IPv4Address("192.168.1.241"), IPv4Address("192.168.1.242")]
    first = lb("first", "2026-01-01T00:00:00Z", [("TCP", 80)])
    second = lb("second", "2026-01-02T00:00:00Z", [("TCP", 80)])  # the same port: no clash in pool mode
    asks = lb("asks", "2026-01-03T00:00:00Z", [("TCP", 80)], loadBalancerIP="192.168.1.240")
    ingress, blocked = assign([first, second], BOARDS, {}, pool)
    assert ingress == {("default", "first"): ["192.168.1.240"], ("default", "second"): ["192.168.1.241"]}
    # The older service keeps what it holds; a request for a held address waits, with the holder named.
    first["status"] = {"loadBalancer": {"ingress": [{"ip": "192.168.1.240"}]}}
    ingress, blocked = assign([asks, second, first], BOARDS, {}, pool)
    assert ingress[("default", "first")] == ["192.168.1.240"] and ingress[("default", "asks")] == []
    assert "default/first" in blocked[("default", "asks")]
    # A held address survives a newer service created before the holder in the list, and is never moved.
    second["status"] = {"loadBalancer": {"ingress": [{"ip": "192.168.1.242"}]}}
    ingress, _ = assign([second, first], BOARDS, {}, pool)
    assert ingress[("default", "second")] == ["192.168.1.242"]
    # MetalLB's annotation is honoured; an address outside the pool is refused with a reason.
    annotated = lb("annotated", "2026-01-04T00:00:00Z", [("TCP", 81)])
    annotated["metadata"]["annotations"] = {"metallb.universe.tf/loadBalancerIPs": "192.168.1.241"}
    outside = lb("outside", "2026-01-05T00:00:00Z", [("TCP", 82)], loadBalancerIP="10.0.0.1")
    ingress, blocked = assign([annotated, outside], BOARDS, {}, pool)
    assert ingress[("default", "annotated")] == ["192.168.1.241"]
    assert "not in the LoadBalancer pool" in blocked[("default", "outside")]


def test_an_exhausted_pool_leaves_later_services_pending() -> None:
    from ipaddress import IPv4Address

    services = [lb(f"s{i}", f"2026-01-0{i + 1}T00:00:00Z", [("TCP", 80)]) for i in range(3)]
    ingress, blocked = assign(services, BOARDS, {}, [IPv4Address("192.168.1.240"), IPv4Address("192.168.1.241")])
    assert ingress[("default", "s2")] == [] and "no free address" in blocked[("default", "s2")]
    assert sorted(ingress[("default", f"s{i}")][0] for i in range(2)) == ["192.168.1.240", "192.168.1.241"]
