"""A pod's resolv.conf per dnsPolicy and dnsConfig, the kubelet's limits and events, and its managed /etc/hosts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.kubelet.dnsconfig import DnsSettings, PodDnsFiles, hosts_file, parse_resolv_conf, resolv_conf

Obj = dict[str, Any]
HOST = "# the node's\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch lan. home\noptions edns0 timeout:2\n"
CFG = DnsSettings(("10.96.0.10",), "cluster.local", HOST)


def pod(ns: str = "shop", **spec: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": ns, "uid": "u1"}, "spec": spec}


def test_the_hosts_resolv_conf_is_parsed() -> None:
    conf = parse_resolv_conf(HOST)
    assert conf.nameservers == ("192.0.2.53", "192.0.2.54")
    assert conf.searches == ("lan", "home") and conf.options == ("edns0", "timeout:2")


def test_cluster_first_is_the_default() -> None:
    conf, warnings = resolv_conf(pod(), CFG)
    assert conf.render() == ("nameserver 10.96.0.10\n"
                             "search shop.svc.cluster.local svc.cluster.local cluster.local lan home\n"
                             "options ndots:5\n")
    assert warnings == []


def test_host_network_pods_get_the_nodes_unless_cluster_first_with_host_net() -> None:
    conf, _ = resolv_conf(pod(hostNetwork=True), CFG)
    assert conf.nameservers == ("192.0.2.53", "192.0.2.54") and conf.options == ("edns0", "timeout:2")
    conf, _ = resolv_conf(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), CFG)
    assert conf.nameservers == ("10.96.0.10",) and conf.searches[0] == "shop.svc.cluster.local"


def test_default_is_the_nodes_file() -> None:
    conf, _ = resolv_conf(pod(dnsPolicy="Default"), CFG)
    assert conf == parse_resolv_conf(HOST)


def test_none_is_exactly_the_dns_config() -> None:
    conf, _ = resolv_conf(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["192.0.2.1"], "searches": ["a.example", "b.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}), CFG)
    assert conf.render() == "nameserver 192.0.2.1\nsearch a.example b.example\noptions ndots:2 edns0\n"


def test_dns_config_is_appended_and_options_merged_by_name() -> None:
    conf, _ = resolv_conf(pod(dnsConfig={"nameservers": ["10.96.0.10", "192.0.2.9"], "searches": ["x.example"],
                                         "options": [{"name": "ndots", "value": "1"}, {"name": "rotate"}]}), CFG)
    assert conf.nameservers == ("10.96.0.10", "192.0.2.9")
    assert conf.searches[-1] == "x.example" and conf.options == ("ndots:1", "rotate")


def test_limits_are_applied_with_the_kubelets_event() -> None:
    conf, warnings = resolv_conf(pod(dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"],
                                                "searches": [f"s{i}.example" for i in range(40)]}), CFG)
    assert conf.nameservers == ("10.96.0.10", "1.1.1.1", "2.2.2.2") and len(conf.searches) == 32
    assert [w.reason for w in warnings] == ["DNSConfigForming", "DNSConfigForming"]
    assert warnings[0].message == ("Nameserver limits were exceeded, some nameservers have been omitted, the "
                                   "applied nameserver line is: 10.96.0.10 1.1.1.1 2.2.2.2")
    assert warnings[1].message.startswith("Search Line limits were exceeded")
    long, warned = resolv_conf(pod(dnsPolicy="None", dnsConfig={"searches": ["x" * 70 + f".s{i}" for i in range(31)]}),
                               CFG)
    assert len(" ".join(long.searches)) <= 2048 and len(long.searches) < 31 and warned


def test_without_a_cluster_dns_cluster_first_falls_back_to_default() -> None:
    conf, warnings = resolv_conf(pod(), DnsSettings((), "cluster.local", HOST))
    assert conf.nameservers == ("192.0.2.53", "192.0.2.54")
    assert warnings[0].reason == "MissingClusterDNS" and 'Falling back to "Default" policy' in warnings[0].message
    quiet, none = resolv_conf(pod(), DnsSettings((), "cluster.local", HOST, warn_missing=False))
    assert quiet == conf and none == []


def test_hosts_has_the_fqdn_with_a_subdomain_and_host_aliases() -> None:
    text = hosts_file(pod(hostname="db-0", subdomain="db", hostAliases=[{"ip": "192.0.2.5", "hostnames": ["a", "b"]}]),
                      "10.244.1.5", "cluster.local")
    assert "10.244.1.5\tdb-0.db.shop.svc.cluster.local\tdb-0\n" in text
    assert "192.0.2.5\ta\tb\n" in text and text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost")
    assert "10.244.1.5\tp\n" in hosts_file(pod(), "10.244.1.5", "cluster.local")


def test_the_files_are_written_and_bound(tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text(HOST)
    files = PodDnsFiles(("10.96.0.10",), "cluster.local", host)
    pod_dir = tmp_path / "pods" / "u1"
    assert files.binds(pod_dir) == []
    assert files.write(pod(), pod_dir, "10.244.1.5") == []
    assert (pod_dir / "resolv.conf").read_text().startswith("nameserver 10.96.0.10\n")
    assert files.binds(pod_dir) == [f"{pod_dir}/resolv.conf:/etc/resolv.conf", f"{pod_dir}/hosts:/etc/hosts"]
