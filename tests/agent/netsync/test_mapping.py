"""Nodes, Services, Endpoints and pods to what the network libraries take: peers and proxy rules (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from agent.netsync.hostports import hostport_rules
from agent.netsync.peers import describe_clashes, peers_from_nodes, pod_cidr_clashes
from agent.netsync.services import DEFAULT_AFFINITY_SECONDS, service_rules
from agent.network import VTEP_MAC_ANNOTATION, Peer
from agent.proxy import Protocol

Obj = dict[str, Any]


def node(name: str, ip: str | None, cidr: str | None, mac: str | None = None) -> Obj:
    meta: Obj = {"name": name, "annotations": {VTEP_MAC_ANNOTATION: mac} if mac else {}}
    status = {"addresses": [{"type": "Hostname", "address": name}] + ([{"type": "InternalIP", "address": ip}]
                                                                       if ip else [])}
    return {"metadata": meta, "spec": {"podCIDR": cidr} if cidr else {}, "status": status}


def test_peers_are_the_other_nodes_with_an_address_and_a_podcidr() -> None:
    nodes = [node("me", "10.0.0.1", "10.244.0.0/24"), node("c", "10.0.0.3", "10.244.2.0/24", "0E:58:0A:00:00:03"),
             node("b", "10.0.0.2", "10.244.1.0/24"), node("joining", "10.0.0.4", None),
             node("no-ip", None, "10.244.5.0/24"), node("v6", "10.0.0.6", "fd00::/64")]
    assert peers_from_nodes(nodes, "me") == [Peer.of("b", "10.0.0.2", "10.244.1.0/24"),
                                             Peer.of("c", "10.0.0.3", "10.244.2.0/24", "0e:58:0a:00:00:03")]


def test_nodes_with_clashing_pod_ranges_are_not_peers() -> None:
    nodes = [node("me", "10.0.0.1", "10.244.0.0/24"), node("b", "10.0.0.2", "10.244.1.0/24"),
             node("takes-b", "10.0.0.3", "10.244.1.0/24"), node("takes-mine", "10.0.0.4", "10.244.0.0/23"),
             node("d", "10.0.0.5", "10.244.3.0/24"), node("joining", None, "10.244.3.0/24")]
    # Not b (its range is claimed twice), nor a node overlapping this board's own range; nor d, whose range a
    # node without an address yet also holds.
    assert peers_from_nodes(nodes, "me") == []
    assert pod_cidr_clashes(nodes) == {"me": ["takes-mine"], "takes-mine": ["b", "me", "takes-b"],
                                       "b": ["takes-b", "takes-mine"], "takes-b": ["b", "takes-mine"],
                                       "d": ["joining"], "joining": ["d"]}
    fine = [node("me", "10.0.0.1", "10.244.0.0/24"), node("b", "10.0.0.2", "10.244.1.0/24")]
    assert [p.name for p in peers_from_nodes(fine, "me")] == ["b"] and describe_clashes(fine) == ""
    assert describe_clashes(nodes[:3]) == ("b 10.244.1.0/24 overlaps takes-b; "
                                           "takes-b 10.244.1.0/24 overlaps b")


def service(name: str, ports: list[Obj], kind: str = "ClusterIP", ip: str = "10.96.0.10", **spec: Any) -> Obj:
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"type": kind, "clusterIP": ip, "ports": ports, **spec}}


def endpoints(name: str, subsets: list[Obj]) -> tuple[tuple[str, str], Obj]:
    return ("default", name), {"metadata": {"namespace": "default", "name": name}, "subsets": subsets}


def test_service_ports_get_their_ready_endpoints_by_port_name() -> None:
    svc = service("web", [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}], kind="NodePort")
    eps = dict([endpoints("web", [
        {"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}], "notReadyAddresses": [{"ip": "10.244.3.9"}],
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                   {"name": "dns", "port": 5353, "protocol": "UDP"}]},
        {"addresses": [{"ip": "10.244.4.2"}], "ports": [{"name": "http", "port": 8081, "protocol": "TCP"}]},
    ])])
    rules = service_rules([svc], eps)
    assert [(r.protocol, r.port, r.node_port, r.endpoints) for r in rules] == [
        (Protocol.TCP, 80, 30080, [(IPv4Address("10.244.1.5"), 8080), (IPv4Address("10.244.2.7"), 8080),
                                   (IPv4Address("10.244.4.2"), 8081)]),
        (Protocol.UDP, 53, 30053, [(IPv4Address("10.244.1.5"), 5353), (IPv4Address("10.244.2.7"), 5353)]),
    ]
    assert all(r.cluster_ip == IPv4Address("10.96.0.10") and r.affinity_timeout is None for r in rules)


def test_unnamed_port_no_endpoints_yet_and_affinity() -> None:
    svc = service("one", [{"port": 443, "targetPort": 6443}], sessionAffinity="ClientIP")
    custom = service("two", [{"port": 80}], ip="10.96.0.11", sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    eps = dict([endpoints("one", [{"addresses": [{"ip": "10.250.0.1"}], "ports": [{"port": 6443}]}])])
    one, two = service_rules([custom, svc], eps)
    assert (one.name, one.endpoints, one.affinity_timeout) == ("one", [(IPv4Address("10.250.0.1"), 6443)],
                                                              DEFAULT_AFFINITY_SECONDS)
    assert (two.name, two.endpoints, two.affinity_timeout) == ("two", [], 60)
    assert one.node_port is None  # a ClusterIP service has no node port even if one was written


def test_what_the_proxy_does_not_serve_is_left_out() -> None:
    svcs = [service("headless", [{"port": 80}], ip="None"),
            service("external", [{"port": 80}], kind="ExternalName"),
            service("sctp", [{"port": 80, "protocol": "SCTP"}]),
            service("v6", [{"port": 80}], ip="fd00::10"),
            service("lb", [{"port": 80, "nodePort": 31000}], kind="LoadBalancer")]
    rules = service_rules(svcs, {})
    assert [(r.name, r.node_port) for r in rules] == [("lb", 31000)]


def test_external_ips_and_load_balancer_ingress_are_served_like_the_cluster_ip() -> None:
    svc = service("web", [{"name": "", "port": 80, "protocol": "TCP", "nodePort": 30080}], kind="LoadBalancer",
                  externalIPs=["192.168.1.50", "not-an-ip", "fd00::1"])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "192.168.1.11"}, {"ip": "192.168.1.10"},
                                                  {"hostname": "lb.example"}]}}
    [rule] = service_rules([svc], dict([endpoints("web", [
        {"addresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 8080, "protocol": "TCP"}]}])]))
    assert rule.external_ips == (IPv4Address("192.168.1.10"), IPv4Address("192.168.1.11"),
                                 IPv4Address("192.168.1.50"))
    assert not rule.local_only
    # A ClusterIP service's stale ingress (it was a LoadBalancer) is not served; its externalIPs are.
    svc["spec"]["type"] = "ClusterIP"
    [rule] = service_rules([svc], {})
    assert rule.external_ips == (IPv4Address("192.168.1.50"),)


def test_local_policy_knows_this_nodes_endpoints() -> None:
    svc = service("web", [{"name": "", "port": 80, "protocol": "TCP", "nodePort": 30080}], kind="NodePort",
                  externalTrafficPolicy="Local")
    eps = dict([endpoints("web", [{"addresses": [{"ip": "10.244.1.5", "nodeName": "b1"},
                                                 {"ip": "10.244.2.5", "nodeName": "b2"}],
                                   "notReadyAddresses": [{"ip": "10.244.1.9", "nodeName": "b1"}],
                                   "ports": [{"port": 8080, "protocol": "TCP"}]}])])
    [on_b1] = service_rules([svc], eps, "b1")
    [on_b3] = service_rules([svc], eps, "b3")
    assert on_b1.local_only and on_b1.node_endpoints() == [(IPv4Address("10.244.1.5"), 8080)]
    assert len(on_b1.ready_endpoints()) == 2
    assert on_b3.local_only and on_b3.node_endpoints() == []
    svc["spec"]["externalTrafficPolicy"] = "Cluster"
    [cluster] = service_rules([svc], eps, "b1")
    assert not cluster.local_only and cluster.local_endpoints == []


def test_the_cluster_dns_service_is_left_to_the_nodes_own_responder() -> None:
    svcs = [service("kube-dns", [{"name": "dns", "port": 53, "protocol": "UDP"}], ip="10.96.0.10"),
            service("web", [{"port": 80}], ip="10.96.0.20")]
    assert {r.name for r in service_rules(svcs, {})} == {"kube-dns", "web"}
    assert [r.name for r in service_rules(svcs, {}, local=IPv4Address("10.96.0.10"))] == ["web"]


def pod(name: str, uid: str, ports: list[Obj], deleting: bool = False) -> Obj:
    meta: Obj = {"namespace": "default", "name": name, "uid": uid}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "ports": ports}]}}


def test_host_ports_of_pods_that_have_an_address() -> None:
    pods = [pod("a", "u1", [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81},
                            {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]),
            pod("no-ip", "u2", [{"containerPort": 80, "hostPort": 8081}]),
            pod("going", "u3", [{"containerPort": 80, "hostPort": 8082}], deleting=True)]
    addresses = {"u1": "10.244.0.5", "u3": "10.244.0.6"}
    rules = hostport_rules(pods, lambda uid: addresses.get(uid, ""))
    assert [(r.protocol, r.cluster_ip, r.node_port, r.endpoints) for r in rules] == [
        (Protocol.TCP, None, 8080, [(IPv4Address("10.244.0.5"), 80)]),
        (Protocol.UDP, None, 53, [(IPv4Address("10.244.0.5"), 53)]),
    ]
