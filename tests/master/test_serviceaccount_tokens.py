"""Service account tokens against a real master over TLS: `kubectl create token`, what a token may do, and every
token or certificate that must get 401 (expired, signed by another key, for a deleted account or pod, forged
certificate); legacy token Secrets; TokenRequest's bad input; OIDC discovery and JWKS; kube-root-ca.crt."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from master.registry.satokens import ServiceAccountTokens
from pikube.dev.netlab import wait_for
from tests.master.conftest import RunningMaster, kubectl_path, start_master

pytestmark = pytest.mark.integration
NS = "tokens"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMaster]:
    master = start_master(tmp_path_factory.mktemp("sa") / "master")
    yield master
    master.stop()


def kubectl(m: RunningMaster, *args: str, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run([kubectl_path("new"), "--kubeconfig", str(m.kubeconfig), *args], capture_output=True,
                          text=True, timeout=60, input=input, env={"HOME": str(m.data_dir), "PATH": "/usr/bin:/bin"})
    assert not check or proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout + proc.stderr


def as_token(m: RunningMaster, token: str, path: str, method: str = "GET", body: Obj | None = None,
             ) -> requests.Response:
    return requests.request(method, m.url + path, json=body, verify=str(m.ca), timeout=15,
                            headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def reader(m: RunningMaster) -> str:
    kubectl(m, "create", "namespace", NS)
    kubectl(m, "-n", NS, "create", "serviceaccount", "reader")
    kubectl(m, "-n", NS, "create", "rolebinding", "reader-view", "--clusterrole=view", f"--serviceaccount={NS}:reader")
    return kubectl(m, "-n", NS, "create", "token", "reader", "--duration=20m").strip()


def test_kubectl_create_token_gives_a_token_the_api_honours(m: RunningMaster, reader: str) -> None:
    header = json.loads(base64.urlsafe_b64decode(reader.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(reader.split(".")[1] + "=="))
    assert header["alg"] == "ES256"
    assert claims["sub"] == f"system:serviceaccount:{NS}:reader"
    assert claims["exp"] - claims["iat"] == 1200
    assert as_token(m, reader, f"/api/v1/namespaces/{NS}/pods").status_code == 200
    refused = as_token(m, reader, f"/api/v1/namespaces/{NS}/secrets")
    assert refused.status_code == 403 and refused.json()["message"] == (
        f'secrets is forbidden: User "system:serviceaccount:{NS}:reader" cannot list resource "secrets" in API '
        f'group "" in the namespace "{NS}"')
    who = as_token(m, reader, "/apis/authentication.k8s.io/v1/selfsubjectreviews", "POST",
                   {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).json()
    assert who["status"]["userInfo"]["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{NS}",
                                                   "system:authenticated"]
    listed = kubectl(m, "auth", "can-i", "--list", "-n", NS, f"--as=system:serviceaccount:{NS}:reader")
    assert "pods " in listed and "secrets" not in listed


def test_tokens_that_do_not_stand_get_401(m: RunningMaster, reader: str) -> None:
    path = f"/api/v1/namespaces/{NS}/pods"
    signer = ServiceAccountTokens(m.data_dir / "pki" / "sa.key", "https://kubernetes.default.svc.cluster.local")
    sa = json.loads(kubectl(m, "-n", NS, "get", "sa", "reader", "-o", "json"))
    claims = signer.claims(reader)
    expired = signer.sign({**claims, "exp": int(time.time()) - 5, "iat": int(time.time()) - 700})
    stranger = ServiceAccountTokens(m.data_dir / "other.key", signer.issuer).sign(claims)
    tampered = reader.split(".")[0] + "." + base64.urlsafe_b64encode(json.dumps(
        {**claims, "sub": "system:serviceaccount:kube-system:default"}).encode()).decode().rstrip("=") + "." + \
        reader.split(".")[2]
    foreign_audience = signer.sign({**claims, "aud": ["vault"]})
    for token in (expired, stranger, tampered, foreign_audience, "garbage", "a.b.c"):
        resp = as_token(m, token, path)
        assert (resp.status_code, resp.json()["reason"]) == (401, "Unauthorized"), token
    # A token bound to a pod dies with the pod; every token of a deleted account dies with it.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "holder", "namespace": NS},
           "spec": {"serviceAccountName": "reader", "containers": [{"name": "c", "image": "busybox"}]}}
    made = json.loads(kubectl(m, "create", "-f", "-", "-o", "json", input=json.dumps(pod)))
    bound = kubectl(m, "-n", NS, "create", "token", "reader", "--bound-object-kind=Pod",
                    "--bound-object-name=holder", f"--bound-object-uid={made['metadata']['uid']}").strip()
    assert as_token(m, bound, path).status_code == 200
    kubectl(m, "-n", NS, "delete", "pod", "holder", "--grace-period=0", "--force")
    assert as_token(m, bound, path).status_code == 401
    assert as_token(m, reader, path).status_code == 200
    kubectl(m, "-n", NS, "create", "serviceaccount", "brief")
    brief = kubectl(m, "-n", NS, "create", "token", "brief").strip()
    assert as_token(m, brief, path).status_code == 403  # authenticated, allowed nothing
    kubectl(m, "-n", NS, "delete", "serviceaccount", "brief")
    assert as_token(m, brief, path).status_code == 401
    kubectl(m, "-n", NS, "create", "serviceaccount", "brief")  # the same name again is another account
    assert as_token(m, brief, path).status_code == 401
    assert sa["metadata"]["uid"] == claims["kubernetes.io"]["serviceaccount"]["uid"]


def test_a_forged_client_certificate_is_not_an_identity(m: RunningMaster, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    try:
        resp = requests.get(m.url + "/api/v1/namespaces", verify=str(m.ca), timeout=15,
                            cert=(str(tmp_path / "c.pem"), str(tmp_path / "k.pem")))
    except (requests.exceptions.SSLError, ssl.SSLError, requests.exceptions.ConnectionError):
        return  # refused in the handshake: no identity either
    assert (resp.status_code, resp.json()["reason"]) == (401, "Unauthorized")


def test_a_legacy_token_secret_is_filled_and_dies_with_its_secret(m: RunningMaster, reader: str) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "reader-token", "namespace": NS,
                           "annotations": {"kubernetes.io/service-account.name": "reader"}}}
    kubectl(m, "create", "-f", "-", input=json.dumps(secret))

    def filled() -> Obj | None:
        got = json.loads(kubectl(m, "-n", NS, "get", "secret", "reader-token", "-o", "json"))
        return got if (got.get("data") or {}).get("token") else None

    got = wait_for("the token filled in", filled, 20, 0.2)
    token = base64.b64decode(got["data"]["token"]).decode()
    assert base64.b64decode(got["data"]["namespace"]).decode() == NS
    assert base64.b64decode(got["data"]["ca.crt"]) == m.ca.read_bytes()
    assert as_token(m, token, f"/api/v1/namespaces/{NS}/pods").status_code == 200
    kubectl(m, "-n", NS, "delete", "secret", "reader-token")
    assert as_token(m, token, f"/api/v1/namespaces/{NS}/pods").status_code == 401


def test_token_request_bad_input_in_kubernetes_words(m: RunningMaster, reader: str) -> None:
    session = m.session()
    base = f"{m.url}/api/v1/namespaces/{NS}/serviceaccounts"
    short = session.post(f"{base}/reader/token", json={"spec": {"expirationSeconds": 599}}, timeout=15)
    assert short.status_code == 422 and short.json()["message"].endswith(
        "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes")
    assert session.post(f"{base}/nobody/token", json={"spec": {}}, timeout=15).status_code == 404
    wrong = session.post(f"{base}/reader/token", json={"spec": {"boundObjectRef": {
        "kind": "Secret", "apiVersion": "v1", "name": "absent"}}}, timeout=15)
    assert wrong.status_code == 404
    kind = session.post(f"{base}/reader/token", json={"spec": {"boundObjectRef": {
        "kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}}, timeout=15)
    assert kind.status_code == 422
    assert session.post(f"{base}/reader/token", data="{", timeout=15,
                        headers={"Content-Type": "application/json"}).status_code == 400
    assert as_token(m, reader, f"/api/v1/namespaces/{NS}/serviceaccounts/reader/token", "POST",
                    {"spec": {}}).status_code == 403  # view may not mint tokens


def test_issuer_discovery_and_the_root_ca_config_map(m: RunningMaster, reader: str) -> None:
    config = as_token(m, reader, "/.well-known/openid-configuration").json()
    assert config["issuer"] == "https://kubernetes.default.svc.cluster.local"
    assert config["id_token_signing_alg_values_supported"] == ["ES256"]
    keys = as_token(m, reader, "/openid/v1/jwks").json()["keys"]
    kid = json.loads(base64.urlsafe_b64decode(reader.split(".")[0] + "=="))["kid"]
    assert [k["kid"] for k in keys] == [kid] and keys[0]["crv"] == "P-256"
    assert requests.get(m.url + "/openid/v1/jwks", verify=str(m.ca), timeout=15).status_code == 401
    ca = json.loads(kubectl(m, "-n", NS, "get", "configmap", "kube-root-ca.crt", "-o", "json"))
    assert ca["data"]["ca.crt"] == m.ca.read_text()
    kubectl(m, "-n", NS, "delete", "configmap", "kube-root-ca.crt")
    wait_for("kube-root-ca.crt put back", lambda: "kube-root-ca.crt" in kubectl(
        m, "-n", NS, "get", "configmap", check=False), 20, 0.2)


def test_the_datastore_health_is_the_admins_to_read(m: RunningMaster, reader: str) -> None:
    from pikube.bootstrap.status import describe_store

    doc = m.session().get(m.url + "/pikube/v1/datastore", timeout=10).json()
    assert doc["backend"] == "sqlite" and doc["readOnly"] is False
    assert describe_store(doc) == f"SQLite ({doc['path']})" and doc["path"].startswith(str(m.data_dir))
    refused = as_token(m, reader, "/pikube/v1/datastore")
    assert refused.status_code == 403
