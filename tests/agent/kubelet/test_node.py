"""The Node an agent registers: labels, capacity, nodeInfo, conditions, Lease; credentials kept 0600."""

from __future__ import annotations

import stat
import time

import pytest

from tests.agent.kubelet.conftest import Cluster, condition

pytestmark = pytest.mark.integration


def test_node_is_registered_with_labels_capacity_info_and_conditions(cluster: Cluster) -> None:
    node = cluster.session.get(cluster.url(f"/api/v1/nodes/{cluster.node}")).json()
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == cluster.node
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] in ("amd64", "arm64", "arm")
    assert "node-role.kubernetes.io/master" not in labels
    status = node["status"]
    for key in ("cpu", "memory", "pods"):
        assert key in status["capacity"] and key in status["allocatable"]
    assert status["capacity"]["pods"] == "110"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("docker://")
    assert info["kubeletVersion"].startswith("v1.")
    assert info["kernelVersion"] and info["osImage"] and info["architecture"] == labels["kubernetes.io/arch"]
    for kind in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert condition(node, kind) == "False"
    assert condition(node, "Ready") == "True"
    assert len(node["metadata"]["annotations"]["pikube.io/serving-cert-sha256"]) == 64
    shown = cluster.kubectl("get", "nodes", cluster.node, "-o", "wide").stdout
    assert "Ready" in shown and "docker://" in shown


def test_lease_is_renewed(cluster: Cluster) -> None:
    path = cluster.url(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{cluster.node}")
    first = cluster.session.get(path).json()["spec"]
    assert first["holderIdentity"] == cluster.node and first["leaseDurationSeconds"] == 40
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        again = cluster.session.get(path).json()["spec"]
        if again["renewTime"] != first["renewTime"]:
            return
        time.sleep(0.5)
    raise AssertionError("the node lease was not renewed within 15 s")


def test_node_credentials_are_kept_private(cluster: Cluster) -> None:
    kubeconfig = cluster.agent.data_dir / "kubelet.kubeconfig"
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert stat.S_IMODE((cluster.agent.data_dir / "pki" / "serving.key").stat().st_mode) == 0o600
    assert "system:node:" in kubeconfig.read_text()


def test_log_endpoint_refuses_a_node_identity(cluster: Cluster) -> None:
    import ssl
    import urllib.request

    from core.kubeconfig import read_kubeconfig, ssl_context

    node = cluster.session.get(cluster.url(f"/api/v1/nodes/{cluster.node}")).json()
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    ctx = ssl_context(read_kubeconfig(cluster.agent.data_dir / "kubelet.kubeconfig"))
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/containerLogs/default/x/y", context=ctx, timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
    else:
        raise AssertionError("a node's certificate was allowed to read logs")
