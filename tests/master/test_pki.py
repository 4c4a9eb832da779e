"""The cluster PKI: real certificates in tmp_path, checked with `cryptography` and real TLS handshakes."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from core import kubeconfig
from master import pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(i) for i in ext.get_values_for_type(x509.IPAddress)}
    return set(ext.get_values_for_type(x509.DNSName)), ips


def _files(p: pki.Pki) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in (p.ca_cert, p.ca_key, p.serving_cert, p.serving_key)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure_pki(tmp_path_factory.mktemp("master"), ["pi-1"], ["192.168.1.10"])


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure_pki(tmp_path_factory.mktemp("other"), ["pi-1"], ["192.168.1.10"])


# -- what ensure_pki creates -------------------------------------------------------------------

def test_ca_is_a_p256_ca_valid_ten_years_and_backdated(cluster: pki.Pki) -> None:
    ca = _load(cluster.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    now = dt.datetime.now(dt.UTC)
    assert now - ca.not_valid_before_utc >= dt.timedelta(minutes=30)
    assert ca.not_valid_after_utc - now > dt.timedelta(days=9 * 365)
    ca.verify_directly_issued_by(ca)


def test_serving_cert_chains_to_ca_and_covers_every_name(cluster: pki.Pki) -> None:
    ca, serving = _load(cluster.ca_cert), _load(cluster.serving_cert)
    serving.verify_directly_issued_by(ca)
    names, ips = _sans(serving)
    assert {"pi-1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"} <= names
    assert {"192.168.1.10", "127.0.0.1", "10.96.0.1"} <= ips
    eku = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert not serving.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_keys_are_private_and_certificates_readable(cluster: pki.Pki) -> None:
    assert stat.S_IMODE(os.stat(cluster.ca_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cluster.serving_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cluster.ca_cert).st_mode) == 0o644
    serving_key = serialization.load_pem_private_key(cluster.serving_key.read_bytes(), None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    cert_key = _load(cluster.serving_cert).public_key()
    assert serving_key.public_key().public_bytes(*fmt) == cert_key.public_bytes(*fmt)


def test_an_ip_given_as_hostname_becomes_an_ip_san(tmp_path: Path) -> None:
    p = pki.ensure_pki(tmp_path, ["10.0.0.7", "Pi-Two"], ["fd00::1"])
    names, ips = _sans(_load(p.serving_cert))
    assert "10.0.0.7" in ips and "fd00::1" in ips and "pi-two" in names
    assert "10.0.0.7" not in names


@pytest.mark.parametrize("bad", ["pi_1", "-pi", "a..b", "", "x" * 64])
def test_a_name_that_is_neither_ip_nor_dns_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="neither an IP address nor a DNS name"):
        pki.ensure_pki(tmp_path, [bad], [])
    assert not (tmp_path / "pki" / "ca.crt").exists()


# -- idempotency and reissuing -----------------------------------------------------------------

def test_second_ensure_changes_nothing(tmp_path: Path) -> None:
    first = _files(pki.ensure_pki(tmp_path, ["pi-1"], ["192.168.1.10"]))
    again = _files(pki.ensure_pki(tmp_path, ["pi-1"], ["192.168.1.10"]))
    assert again == first
    # A subset of what is covered is covered too: nothing reissued.
    assert _files(pki.ensure_pki(tmp_path, [], [])) == first


def test_new_address_reissues_serving_cert_but_keeps_ca(tmp_path: Path) -> None:
    first = _files(pki.ensure_pki(tmp_path, ["pi-1"], ["192.168.1.10"]))
    p = pki.ensure_pki(tmp_path, ["pi-1"], ["192.168.1.10", "192.168.1.99"])
    second = _files(p)
    assert second["ca.crt"] == first["ca.crt"] and second["ca.key"] == first["ca.key"]
    assert second["serving.crt"] != first["serving.crt"]
    assert "192.168.1.99" in _sans(_load(p.serving_cert))[1]
    _load(p.serving_cert).verify_directly_issued_by(_load(p.ca_cert))


def test_serving_cert_close_to_expiry_is_renewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pki, "SERVING_DAYS", 30)
    short = _files(pki.ensure_pki(tmp_path, ["pi-1"], []))
    monkeypatch.setattr(pki, "SERVING_DAYS", 365)
    p = pki.ensure_pki(tmp_path, ["pi-1"], [])
    assert _files(p)["serving.crt"] != short["serving.crt"]
    assert _load(p.serving_cert).not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)


def test_serving_cert_from_another_ca_is_replaced(tmp_path: Path, other: pki.Pki) -> None:
    p = pki.ensure_pki(tmp_path, ["pi-1"], [])
    p.serving_cert.write_bytes(other.serving_cert.read_bytes())
    p.serving_key.write_bytes(other.serving_key.read_bytes())
    pki.ensure_pki(tmp_path, ["pi-1"], [])
    _load(p.serving_cert).verify_directly_issued_by(_load(p.ca_cert))


def test_serving_key_not_matching_its_cert_is_replaced(tmp_path: Path, other: pki.Pki) -> None:
    p = pki.ensure_pki(tmp_path, ["pi-1"], [])
    p.serving_key.write_bytes(other.serving_key.read_bytes())
    pki.ensure_pki(tmp_path, ["pi-1"], [])
    assert p.serving_key.read_bytes() != other.serving_key.read_bytes()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(p.serving_cert, p.serving_key)  # raises if they do not match


def test_ca_without_its_key_is_an_error_not_a_new_ca(tmp_path: Path) -> None:
    p = pki.ensure_pki(tmp_path, ["pi-1"], [])
    ca_before = p.ca_cert.read_bytes()
    p.ca_key.unlink()
    with pytest.raises(pki.PkiError, match=r"key .* is missing"):
        pki.ensure_pki(tmp_path, ["pi-1"], [])
    assert p.ca_cert.read_bytes() == ca_before and not p.ca_key.exists()


def test_ca_with_a_foreign_key_is_an_error(tmp_path: Path, other: pki.Pki) -> None:
    p = pki.ensure_pki(tmp_path, ["pi-1"], [])
    p.ca_key.write_bytes(other.ca_key.read_bytes())
    with pytest.raises(pki.PkiError, match="is not the key of"):
        pki.ensure_pki(tmp_path, ["pi-1"], [])


def test_key_left_without_ca_cert_by_a_crash_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.key").write_bytes(b"half-written")
    p = pki.ensure_pki(tmp_path, ["pi-1"], [])
    _load(p.serving_cert).verify_directly_issued_by(_load(p.ca_cert))


def test_concurrent_first_starts_make_one_ca(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: pki.ensure_pki(tmp_path, ["pi-1"], []), range(4)))
    assert len({r.ca_cert for r in results}) == 1
    _load(results[0].serving_cert).verify_directly_issued_by(_load(results[0].ca_cert))


# -- client certificates and identities --------------------------------------------------------

def test_client_cert_is_signed_for_client_auth(cluster: pki.Pki) -> None:
    cert_pem, key_pem = pki.issue_client_cert(cluster, "alice", ["devs", "ops"], days=10)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(_load(cluster.ca_cert))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=9) < left <= dt.timedelta(days=10)
    assert pki.identity_from_cert(cert_pem) == pki.Identity("alice", ("devs", "ops"))
    assert b"PRIVATE KEY" in key_pem


def test_client_cert_needs_a_name_and_a_positive_validity(cluster: pki.Pki) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        pki.issue_client_cert(cluster, "alice", [], days=0)
    with pytest.raises(ValueError, match="common name"):
        pki.issue_client_cert(cluster, "", [])


def test_admin_and_node_identities(cluster: pki.Pki) -> None:
    admin = pki.identity_from_cert(pki.issue_admin_cert(cluster)[0])
    assert admin == pki.Identity("pikube-admin", ("system:masters",))
    assert admin.is_admin and admin.node_name is None
    node_pem = pki.issue_node_cert(cluster, "pi-2")[0]
    der = x509.load_pem_x509_certificate(node_pem).public_bytes(serialization.Encoding.DER)
    node = pki.identity_from_cert(der)
    assert node == pki.Identity("system:node:pi-2", ("system:nodes",))
    assert node.node_name == "pi-2" and not node.is_admin
    # The node prefix without the group is not a node.
    fake = pki.identity_from_cert(pki.issue_client_cert(cluster, "system:node:pi-3", ["devs"])[0])
    assert fake.node_name is None


def test_identity_from_garbage_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"not an X\.509 certificate"):
        pki.identity_from_cert(b"\x30\x03\x02\x01\x01")


def test_ca_hash_is_sha256_of_the_der_ca(cluster: pki.Pki) -> None:
    der = _load(cluster.ca_cert).public_bytes(serialization.Encoding.DER)
    assert pki.ca_hash(cluster.ca_cert.read_bytes()) == hashlib.sha256(der).hexdigest()


def test_admin_kubeconfig_is_written_once_and_kept(tmp_path: Path, cluster: pki.Pki) -> None:
    path = tmp_path / "admin.kubeconfig"
    assert pki.ensure_admin_kubeconfig(cluster, path, "https://127.0.0.1:6443")
    first = path.read_bytes()
    assert not pki.ensure_admin_kubeconfig(cluster, path, "https://127.0.0.1:6443")
    assert path.read_bytes() == first
    cfg = kubeconfig.read_kubeconfig(path)
    assert cfg.ca_pem == cluster.ca_pem() and cfg.cert_pem is not None
    assert pki.identity_from_cert(cfg.cert_pem).is_admin
    # A different server address, or a CA that is not the cluster's, means a new file.
    assert pki.ensure_admin_kubeconfig(cluster, path, "https://192.168.1.10:6443")
    assert kubeconfig.read_kubeconfig(path).server == "https://192.168.1.10:6443"


def test_admin_kubeconfig_from_another_ca_is_rewritten(tmp_path: Path, cluster: pki.Pki,
                                                       other: pki.Pki) -> None:
    path = tmp_path / "admin.kubeconfig"
    pki.ensure_admin_kubeconfig(other, path, "https://127.0.0.1:6443")
    assert pki.ensure_admin_kubeconfig(cluster, path, "https://127.0.0.1:6443")
    assert kubeconfig.read_kubeconfig(path).ca_pem == cluster.ca_pem()


# -- real TLS handshakes on 127.0.0.1 ----------------------------------------------------------

def server_context(p: pki.Pki) -> ssl.SSLContext:
    """What the API server does: serve the serving cert, ask for a client cert from the CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(p.serving_cert, p.serving_key)
    ctx.load_verify_locations(p.ca_cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str) -> bytes:
    """Connect over 127.0.0.1; return the client cert DER the server saw, or raise the client's error."""
    seen: dict[str, object] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    seen["der"] = tls.getpeercert(binary_form=True)
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                seen["error"] = exc

        t = threading.Thread(target=serve)
        t.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname=hostname) as tls:
                data = tls.recv(2)
        finally:
            t.join(5)
    if "error" in seen:
        raise ssl.SSLError(f"server side: {seen['error']}")
    assert data == b"ok"
    der = seen["der"]
    assert isinstance(der, bytes)
    return der


def _client(ca: pki.Pki, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    return kubeconfig.ssl_context(kubeconfig.KubeConfig(
        server="https://127.0.0.1:6443", ca_pem=ca.ca_pem(), cert_pem=cert_pem, key_pem=key_pem))


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost", "pi-1", "kubernetes.default.svc"])
def test_mutual_tls_with_admin_cert_yields_admin_identity(cluster: pki.Pki, hostname: str) -> None:
    der = handshake(server_context(cluster), _client(cluster, *pki.issue_admin_cert(cluster)), hostname)
    assert pki.identity_from_cert(der) == pki.Identity("pikube-admin", ("system:masters",))


def test_client_cert_from_another_ca_is_refused(cluster: pki.Pki, other: pki.Pki) -> None:
    client = _client(cluster, *pki.issue_admin_cert(other))  # trusts the right CA, wrong cert
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(server_context(cluster), client, "127.0.0.1")


def test_server_from_another_ca_is_refused(cluster: pki.Pki, other: pki.Pki) -> None:
    client = _client(cluster, *pki.issue_admin_cert(cluster))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_context(other), client, "127.0.0.1")


def test_server_name_outside_the_sans_is_refused(cluster: pki.Pki) -> None:
    client = _client(cluster, *pki.issue_admin_cert(cluster))
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|match"):
        handshake(server_context(cluster), client, "pi-9")
