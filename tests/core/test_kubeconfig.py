"""Kubeconfig files: round-trip, what kubectl makes of them, and TLS contexts built from them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from core import kubeconfig
from core.kubeconfig import KubeConfig
from master import pki
from tests.conftest import require


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure_pki(tmp_path_factory.mktemp("master"), ["pi-1"], [])


@pytest.fixture(scope="module")
def admin(cluster: pki.Pki) -> KubeConfig:
    cert, key = pki.issue_admin_cert(cluster)
    return KubeConfig(server="https://127.0.0.1:6443", ca_pem=cluster.ca_pem(), cert_pem=cert, key_pem=key)


def test_round_trip_with_client_certificate(tmp_path: Path, admin: KubeConfig) -> None:
    path = tmp_path / "sub" / "admin.kubeconfig"
    kubeconfig.write_kubeconfig(path, admin)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kubeconfig.read_kubeconfig(path) == admin
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "pikube"
    assert doc["contexts"][0]["context"] == {"cluster": "pikube", "user": "pikube-admin"}
    assert base64.b64decode(doc["users"][0]["user"]["client-key-data"]) == admin.key_pem
    assert not list(tmp_path.glob("sub/.*.tmp"))


def test_round_trip_with_token_and_rewrite_keeps_mode(tmp_path: Path, cluster: pki.Pki) -> None:
    path = tmp_path / "kc"
    path.write_text("old")
    os.chmod(path, 0o644)
    cfg = KubeConfig(server="https://10.0.0.1:6443", ca_pem=cluster.ca_pem(), token="abc.def")
    kubeconfig.write_kubeconfig(path, cfg, user="bot")
    assert kubeconfig.read_kubeconfig(path) == cfg
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kubeconfig.auth_headers(cfg) == {"Authorization": "Bearer abc.def"}


def test_secrets_are_not_in_repr(admin: KubeConfig) -> None:
    assert admin.key_pem is not None and admin.key_pem.decode()[40:80] not in repr(admin)
    assert "s3cr3t" not in repr(KubeConfig(server="https://x", token="s3cr3t"))


def test_file_references_resolve_relative_to_the_kubeconfig(tmp_path: Path, admin: KubeConfig) -> None:
    assert admin.ca_pem and admin.cert_pem and admin.key_pem
    (tmp_path / "ca.crt").write_bytes(admin.ca_pem)
    (tmp_path / "c.crt").write_bytes(admin.cert_pem)
    (tmp_path / "c.key").write_bytes(admin.key_pem)
    (tmp_path / "tok").write_text("tok123\n")
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "b",
        "clusters": [{"name": "c", "cluster": {"server": "https://h:1", "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"client-certificate": "c.crt", "client-key": "c.key"}},
                  {"name": "t", "user": {"tokenFile": "tok"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u"}},
                     {"name": "b", "context": {"cluster": "c", "user": "t"}}],
    }
    (tmp_path / "kc").write_text(yaml.safe_dump(doc))
    by_file = kubeconfig.read_kubeconfig(tmp_path / "kc", context="a")
    assert by_file.ca_pem == admin.ca_pem
    assert (by_file.cert_pem, by_file.key_pem) == (admin.cert_pem, admin.key_pem)
    current = kubeconfig.read_kubeconfig(tmp_path / "kc")
    assert current.token == "tok123" and current.cert_pem is None


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "no mapping"),
    ("a: [\n", "not valid YAML"),
    ("kind: Config\n", "no current-context"),
    ("current-context: x\ncontexts: []\n", "no context named 'x'"),
    ("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
     "clusters: [{name: c, cluster: {}}]\n", "has no server"),
    ("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
     "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority-data: '!!'}}]\n",
     "not valid base64"),
])
def test_malformed_kubeconfigs_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "kc").write_text(text)
    with pytest.raises(ValueError, match=message):
        kubeconfig.read_kubeconfig(tmp_path / "kc")


def test_writing_needs_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="client certificate and key, or a token"):
        kubeconfig.write_kubeconfig(tmp_path / "kc", KubeConfig(server="https://x"))
    with pytest.raises(ValueError, match="both"):
        kubeconfig.write_kubeconfig(tmp_path / "kc", KubeConfig(server="https://x", cert_pem=b"c"))
    assert not (tmp_path / "kc").exists()


def test_ssl_context_writes_nothing_to_disk(tmp_path: Path, admin: KubeConfig,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    ctx = kubeconfig.ssl_context(admin)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert list(tmp_path.iterdir()) == []


def test_ssl_context_fallback_without_memfd_cleans_up(tmp_path: Path, admin: KubeConfig,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "memfd_create")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    seen: list[int] = []
    real = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, *args: object, **kwargs: object) -> None:
        seen.append(stat.S_IMODE(os.stat(os.path.dirname(certfile)).st_mode))
        real(self, certfile)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    kubeconfig.ssl_context(admin)
    assert seen == [0o700]
    assert list(tmp_path.iterdir()) == []


def test_ssl_context_rejects_a_key_that_is_not_the_certs(admin: KubeConfig, cluster: pki.Pki) -> None:
    _, other_key = pki.issue_admin_cert(cluster)
    bad = KubeConfig(server=admin.server, ca_pem=admin.ca_pem, cert_pem=admin.cert_pem, key_pem=other_key)
    with pytest.raises(ssl.SSLError):
        kubeconfig.ssl_context(bad)


# -- real kubectl ------------------------------------------------------------------------------

def _kubectl() -> str:
    path = shutil.which("kubectl")
    require(path is not None, "kubectl is not on PATH")
    assert path is not None
    return path


def test_kubectl_config_view_parses_it(tmp_path: Path, admin: KubeConfig) -> None:
    kubectl = _kubectl()
    path = tmp_path / "kc"
    kubeconfig.write_kubeconfig(path, admin)
    out = subprocess.run([kubectl, "config", "view", "--kubeconfig", str(path), "--raw", "-o", "json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    doc = json.loads(out)
    assert doc["current-context"] == "pikube"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert admin.ca_pem is not None
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) == admin.ca_pem
    assert doc["users"][0]["name"] == "pikube-admin"
    redacted = subprocess.run([kubectl, "config", "view", "--kubeconfig", str(path)],
                              capture_output=True, text=True, timeout=60, check=True).stdout
    assert "client-key-data: DATA+OMITTED" in redacted


@pytest.fixture
def version_server(cluster: pki.Pki) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server with the cluster's serving cert that answers /version to verified admins."""
    users: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert isinstance(self.connection, ssl.SSLSocket)
            der = self.connection.getpeercert(binary_form=True)
            users.append(pki.identity_from_cert(der).user if der else "")
            body = json.dumps({
                "major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/arm64",
                "goVersion": "go1.22", "compiler": "gc", "gitCommit": "", "gitTreeState": "clean",
                "buildDate": "2024-01-01T00:00:00Z"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cluster.serving_cert, cluster.serving_key)
    ctx.load_verify_locations(cluster.ca_cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1], users
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_kubectl_talks_mutual_tls_with_these_certificates(tmp_path: Path, cluster: pki.Pki,
                                                          version_server: tuple[int, list[str]]) -> None:
    """Go's TLS stack (stricter than OpenSSL's) accepts the CA, serving cert and admin cert."""
    kubectl = _kubectl()
    port, users = version_server
    path = tmp_path / "kc"
    pki.ensure_admin_kubeconfig(cluster, path, f"https://127.0.0.1:{port}")
    done = subprocess.run([kubectl, "--kubeconfig", str(path), "get", "--raw", "/version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["gitVersion"] == "v1.31.0"
    assert users and set(users) == {"pikube-admin"}
