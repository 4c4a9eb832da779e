"""The master creates `kube-system/kube-dns` at bootstrap, as it creates `default/kubernetes`, seen through kubectl."""

from __future__ import annotations

import json

import pytest

from master.bootstrap import cluster_dns_ip
from tests.master.conftest import RunningMaster, kubectl


def test_the_cluster_dns_address_is_the_tenth_of_the_service_range_unless_given() -> None:
    assert cluster_dns_ip("10.96.0.0/12") == "10.96.0.10"
    assert cluster_dns_ip("10.43.0.0/16") == "10.43.0.10"
    assert cluster_dns_ip("10.96.0.0/12", "10.96.0.53") == "10.96.0.53"


@pytest.mark.parametrize("which", ["new", "old"])
def test_kube_dns_service_exists_after_bootstrap(master: RunningMaster, which: str) -> None:
    svc = json.loads(kubectl(master, which, "get", "service", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == "10.96.0.10" and svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")]
    assert "selector" not in svc["spec"]  # every agent answers on it itself: no endpoints to manage
    # a new service never gets the address
    made = kubectl(master, which, "create", "service", "clusterip", f"other-{which}", "--tcp=80:80").stdout
    assert made
    ip = kubectl(master, which, "get", "service", f"other-{which}", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ip != "10.96.0.10"
