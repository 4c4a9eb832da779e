"""The cluster zone's records, rule by rule of the Kubernetes DNS specification 1.1.0 (pure, no sockets)."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from agent.dns.zone import Kind, Outcome, Record, Zone

Obj = dict[str, Any]
D = "cluster.local"


def svc(name: str, ns: str = "default", ip: str = "10.96.0.20", ports: list[Obj] | None = None, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": ports if ports is not None else [], **spec}}


def eps(name: str, ready: list[tuple[str, str]], not_ready: list[str] = (), ports: list[Obj] | None = None,
        ns: str = "default") -> Obj:
    subset: Obj = {"addresses": [{"ip": ip, **({"hostname": h} if h else {})} for ip, h in ready],
                   "notReadyAddresses": [{"ip": ip} for ip in not_ready]}
    if ports:
        subset["ports"] = ports
    return {"metadata": {"name": name, "namespace": ns}, "subsets": [subset]}


def zone(services: list[Obj], endpoints: list[Obj] = ()) -> Zone:
    by_key = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    return Zone(D, services, by_key, [IPv4Network("10.96.0.0/12"), IPv4Network("10.244.0.0/16")])


def data(z: Zone, name: str, kind: Kind) -> list[str]:
    result = z.lookup(name, kind)
    assert result.outcome is Outcome.ANSWER, result
    return sorted(r.data for r in result.records)


def test_dns_version_is_1_1_0() -> None:
    assert data(zone([]), "dns-version.cluster.local", Kind.TXT) == ["1.1.0"]


def test_a_clusterip_service_has_its_address_case_insensitively() -> None:
    z = zone([svc("web", ip="10.96.0.20")])
    assert data(z, "web.default.svc.cluster.local.", Kind.A) == ["10.96.0.20"]
    assert data(z, "WeB.DeFault.SVC.Cluster.Local", Kind.A) == ["10.96.0.20"]


def test_a_name_without_the_asked_type_is_nodata_and_a_missing_one_nxdomain() -> None:
    z = zone([svc("web")])
    aaaa = z.lookup("web.default.svc.cluster.local", Kind.AAAA)
    assert aaaa.outcome is Outcome.ANSWER and aaaa.records == () and aaaa.soa_owner == D
    for empty in ("svc.cluster.local", "default.svc.cluster.local"):
        assert z.lookup(empty, Kind.A) == aaaa.__class__(Outcome.ANSWER, (), D)
    assert z.lookup("nope.default.svc.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN
    assert z.lookup("web.other.svc.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN
    assert z.lookup("api.github.com.default.svc.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN


def test_srv_only_for_named_ports_with_the_protocol() -> None:
    z = zone([svc("web", ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"},
                                {"name": "dns", "port": 53, "protocol": "UDP"}])])
    assert data(z, "_http._tcp.web.default.svc.cluster.local", Kind.SRV) == ["0 100 80 web.default.svc.cluster.local"]
    assert data(z, "_dns._udp.web.default.svc.cluster.local", Kind.SRV) == ["0 100 53 web.default.svc.cluster.local"]
    assert z.lookup("_http._udp.web.default.svc.cluster.local", Kind.SRV).outcome is Outcome.NXDOMAIN
    assert data(z, "_tcp.web.default.svc.cluster.local", Kind.SRV) == []  # an empty non-terminal


def test_ptr_for_a_cluster_ip_and_nxdomain_for_an_unknown_one_in_our_ranges() -> None:
    z = zone([svc("web", ip="10.96.3.4")])
    assert data(z, "4.3.96.10.in-addr.arpa", Kind.PTR) == ["web.default.svc.cluster.local"]
    assert z.lookup("5.3.96.10.in-addr.arpa", Kind.PTR).outcome is Outcome.NXDOMAIN
    assert z.lookup("1.1.168.192.in-addr.arpa", Kind.PTR).outcome is Outcome.NOT_OURS


def test_a_headless_service_has_its_ready_endpoints_only() -> None:
    z = zone([svc("db", ip="None", ports=[{"name": "pg", "port": 5432}])],
             [eps("db", [("10.244.1.5", "db-0"), ("10.244.2.6", "")], ["10.244.3.7"],
                  ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])])
    assert data(z, "db.default.svc.cluster.local", Kind.A) == ["10.244.1.5", "10.244.2.6"]
    assert data(z, "db-0.db.default.svc.cluster.local", Kind.A) == ["10.244.1.5"]
    assert data(z, "10-244-2-6.db.default.svc.cluster.local", Kind.A) == ["10.244.2.6"]
    assert data(z, "_pg._tcp.db.default.svc.cluster.local", Kind.SRV) == [
        "0 50 5432 10-244-2-6.db.default.svc.cluster.local", "0 50 5432 db-0.db.default.svc.cluster.local"]
    assert data(z, "5.1.244.10.in-addr.arpa", Kind.PTR) == ["db-0.db.default.svc.cluster.local"]
    assert z.lookup("10-244-3-7.db.default.svc.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN


def test_a_headless_service_without_ready_endpoints_does_not_exist() -> None:
    z = zone([svc("db", ip="None")], [eps("db", [], ["10.244.3.7"])])
    assert z.lookup("db.default.svc.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN


def test_an_external_name_is_a_cname_for_every_type() -> None:
    z = zone([svc("ext", ip="", type="ExternalName", externalName="Example.ORG."),
              svc("alias", ip="", type="ExternalName", externalName="web.default.svc.cluster.local"),
              svc("web", ip="10.96.0.30")])
    result = z.lookup("ext.default.svc.cluster.local", Kind.A)
    assert result.records == (Record("ext.default.svc.cluster.local", Kind.CNAME, "example.org"),)
    chased = z.lookup("alias.default.svc.cluster.local", Kind.A).records
    assert [r.kind for r in chased] == [Kind.CNAME, Kind.A] and chased[1].data == "10.96.0.30"


def test_pod_names_answer_their_dashed_address_in_any_namespace() -> None:
    z = zone([])
    assert data(z, "10-244-1-5.anything.pod.cluster.local", Kind.A) == ["10.244.1.5"]
    assert z.lookup("10-244-1.ns.pod.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN
    assert z.lookup("10-244-1-500.ns.pod.cluster.local", Kind.A).outcome is Outcome.NXDOMAIN


def test_names_outside_the_zone_are_not_ours() -> None:
    z = zone([svc("web")])
    assert z.lookup("example.org", Kind.A).outcome is Outcome.NOT_OURS
    assert z.lookup("notcluster.local", Kind.A).outcome is Outcome.NOT_OURS


def test_a_long_name_in_the_zone_is_nxdomain() -> None:
    name = ".".join(["a"] * 119) + ".cluster.local"
    assert zone([]).lookup(name, Kind.A).outcome is Outcome.NXDOMAIN
