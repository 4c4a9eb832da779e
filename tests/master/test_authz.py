"""A node identity may read only what its own pods need; anything else is 403."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from master.pki import issue_node_cert, pki_paths
from tests.master.conftest import RunningMaster

pytestmark = pytest.mark.integration


def node_session(master: RunningMaster, name: str, tmp: Path) -> requests.Session:
    cert, key = issue_node_cert(pki_paths(master.data_dir), name)
    (tmp / f"{name}.crt").write_bytes(cert)
    (tmp / f"{name}.key").write_bytes(key)
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override our CA
    s.verify = str(master.ca)
    s.cert = (str(tmp / f"{name}.crt"), str(tmp / f"{name}.key"))
    return s


def pod(name: str, node: str, secret: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pikube/busybox:1",
                                                       "envFrom": [{"secretRef": {"name": secret}}]}]}}


def test_node_reads_only_its_own_pods_secrets(master: RunningMaster, tmp_path: Path) -> None:
    admin = master.session()
    base = master.url + "/api/v1/namespaces/default"
    for name in ("sec-a", "sec-b"):
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                  "data": {"k": base64.b64encode(name.encode()).decode()}}
        assert admin.post(base + "/secrets", json=secret).status_code == 201
    assert admin.post(base + "/pods", json=pod("on-a", "node-a", "sec-a")).status_code == 201
    assert admin.post(base + "/pods", json=pod("on-b", "node-b", "sec-b")).status_code == 201

    node_a = node_session(master, "node-a", tmp_path)
    assert node_a.get(base + "/secrets/sec-a").status_code == 200
    denied = node_a.get(base + "/secrets/sec-b")
    assert denied.status_code == 403
    body = denied.json()
    assert body["reason"] == "Forbidden"
    assert 'User "system:node:node-a" cannot get resource "secrets"' in body["message"]
    assert base64.b64encode(b"sec-b").decode() not in denied.text  # no secret data leaks

    # Pods: only its own, and only through the node's field selector.
    assert node_a.get(master.url + "/api/v1/pods").status_code == 403
    mine = node_a.get(master.url + "/api/v1/pods", params={"fieldSelector": "spec.nodeName=node-a"})
    assert mine.status_code == 200
    assert [p["metadata"]["name"] for p in mine.json()["items"]] == ["on-a"]
    assert node_a.get(base + "/pods/on-b").status_code == 403
    # Its pods' status may be written; another node's may not.
    patch = {"status": {"phase": "Running"}}
    hdr = {"Content-Type": "application/merge-patch+json"}
    assert node_a.patch(base + "/pods/on-a/status", json=patch, headers=hdr).status_code == 200
    assert node_a.patch(base + "/pods/on-b/status", json=patch, headers=hdr).status_code == 403
    # Cluster objects it has no business with.
    assert node_a.post(base + "/configmaps", json={"metadata": {"name": "x"}}).status_code == 403
    assert node_a.delete(master.url + "/api/v1/namespaces/default").status_code == 403
    # Its own Lease yes, another node's no.
    leases = master.url + "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    lease = {"metadata": {"name": "node-a"}, "spec": {"holderIdentity": "node-a"}}
    assert node_a.post(leases, json=lease).status_code == 201
    other = {"metadata": {"name": "node-b"}, "spec": {"holderIdentity": "node-a"}}
    assert node_a.post(leases, json=other).status_code == 403
