"""The cluster's certificates: a CA, the API server's serving certificate, client certificates.

`enable-master` and every start of the master call `ensure_pki`, which is
idempotent: the CA is created once and then only ever reused (a new CA would
orphan every joined node); the serving certificate is reissued only when it
does not cover the requested names and addresses, is close to expiry, or was
not issued by the CA. Keys are ECDSA P-256 (fast to generate and to verify on
a Pi) and written 0600, atomically and fsynced (a Pi loses power without
warning). `notBefore` is set an hour in the past so a board whose clock is a
little behind still accepts them (`pikube doctor` checks larger skews).

Authentication by client certificate follows Kubernetes: the user is the
subject's CN, the groups are its O values (`pikube-admin` in
`system:masters`; `system:node:<name>` in `system:nodes`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.fsutil import write_atomic  # re-exported: master.tokens writes its file with it
from core.jointoken import ca_hash
from core.kubeconfig import KubeConfig, read_kubeconfig, write_kubeconfig

__all__ = [
    "ADMIN_GROUP", "ADMIN_USER", "NODE_GROUP", "NODE_USER_PREFIX", "SERVICE_IP",
    "Identity", "Pki", "PkiError", "ca_hash", "ensure_admin_kubeconfig", "ensure_pki",
    "identity_from_cert",
    "issue_admin_cert", "issue_client_cert", "issue_node_cert", "write_atomic",
]

ADMIN_USER = "pikube-admin"
ADMIN_GROUP = "system:masters"
NODE_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
SERVICE_IP = "10.96.0.1"
DEFAULT_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")
DEFAULT_ADDRESSES = ("127.0.0.1", SERVICE_IP)

CA_DAYS = 3650
SERVING_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=90)
BACKDATE = dt.timedelta(hours=1)

_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


class PkiError(Exception):
    """The data dir's certificates are unusable in a way that needs a person (e.g. CA key lost)."""


@dataclass(frozen=True)
class Pki:
    """Where the cluster's CA and the API server's serving certificate live."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()


@dataclass(frozen=True)
class Identity:
    """Who a verified client certificate names: Kubernetes' user and groups."""

    user: str
    groups: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    @property
    def node_name(self) -> str | None:
        """The node this identity speaks for (`system:node:<name>` in `system:nodes`), else None."""
        if NODE_GROUP in self.groups and self.user.startswith(NODE_USER_PREFIX):
            return self.user[len(NODE_USER_PREFIX):] or None
        return None


# -- files -------------------------------------------------------------------------------------

@contextlib.contextmanager
def locked_dir(directory: Path) -> Iterator[None]:
    """Serialise `ensure_pki` between processes (enable-master and the master service)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- building blocks ---------------------------------------------------------------------------

def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an ECDSA key")
    return key


def same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def create_ca(pki: Pki, label: str = "pikube-ca") -> None:
    """A new self-signed CA at `pki.ca_cert`/`pki.ca_key`, its CN `<label>@<unix time>`."""
    key = new_key()
    now = utc_now()
    name = _name(f"{label}@{int(now.timestamp())}")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # The key first: a crash between the two leaves no CA certificate, so the next
    # start makes a fresh pair instead of finding a certificate without its key.
    write_atomic(pki.ca_key, key_pem(key))
    write_atomic(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    except ValueError as exc:
        raise PkiError(f"{pki.ca_cert} is not a PEM certificate: {exc}") from exc
    if not pki.ca_key.exists():
        raise PkiError(
            f"{pki.ca_cert} exists but its key {pki.ca_key} is missing; restore the key from a "
            "backup (a new CA would lock out every joined node), or run `pikube reset`"
        )
    key = load_key(pki.ca_key)
    if not same_public_key(cert, key):
        raise PkiError(f"{pki.ca_key} is not the key of {pki.ca_cert}")
    return cert, key


def sign_leaf(
    subject: x509.Name, public_key: ec.EllipticCurvePublicKey, ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey, days: int, usage: x509.ObjectIdentifier | Sequence[x509.ObjectIdentifier],
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    usages = [usage] if isinstance(usage, x509.ObjectIdentifier) else list(usage)
    now = utc_now()
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


# -- serving certificate -----------------------------------------------------------------------

def _wanted_sans(hostnames: Sequence[str], addresses: Sequence[str]) -> tuple[set[str], set[str]]:
    """Validated (DNS names, IP addresses) the serving certificate must cover, defaults included."""
    names: set[str] = set(DEFAULT_NAMES)
    ips: set[str] = set(DEFAULT_ADDRESSES)
    for raw in (*hostnames, *addresses):
        text = raw.strip().lower()
        try:
            ips.add(str(ipaddress.ip_address(text.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _DNS_RE.fullmatch(text):
            raise ValueError(f"{raw!r} is neither an IP address nor a DNS name")
        names.add(text)
    return names, ips


def cert_sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    names = {n.lower() for n in ext.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return names, ips


def _serving_ok(pki: Pki, ca_cert: x509.Certificate, names: set[str], ips: set[str]) -> bool:
    """True when the existing serving certificate can stay as it is."""
    if not (pki.serving_cert.exists() and pki.serving_key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
        key = load_key(pki.serving_key)
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature, PkiError):
        return False
    have_names, have_ips = cert_sans(cert)
    fresh = cert.not_valid_after_utc - utc_now() > RENEW_BEFORE
    return same_public_key(cert, key) and fresh and names <= have_names and ips <= have_ips


def _issue_serving(pki: Pki, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                   names: set[str], ips: set[str]) -> None:
    key = new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names)]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(ips)]
    cert = sign_leaf(_name("pikube-apiserver"), key.public_key(), ca_cert, ca_key, SERVING_DAYS,
                      ExtendedKeyUsageOID.SERVER_AUTH, sans)
    write_atomic(pki.serving_key, key_pem(key))
    write_atomic(pki.serving_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def pki_paths(data_dir: Path) -> Pki:
    """The file layout under `data_dir/pki/`, without creating anything."""
    d = data_dir / "pki"
    return Pki(ca_cert=d / "ca.crt", ca_key=d / "ca.key",
               serving_cert=d / "serving.crt", serving_key=d / "serving.key")


def ensure_pki(data_dir: Path, hostnames: Sequence[str], addresses: Sequence[str]) -> Pki:
    """Create what is missing under `data_dir/pki/`, reuse the CA, reissue a stale serving cert.

    `hostnames` and `addresses` are what clients will dial (an IP in either
    list is treated as an IP); 127.0.0.1, localhost, 10.96.0.1 and the
    `kubernetes.default.svc…` names are always included. Raises ValueError
    for an entry that is neither, `PkiError` when the CA is unusable.
    """
    names, ips = _wanted_sans(hostnames, addresses)
    pki = pki_paths(data_dir)
    pki.ca_cert.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    with locked_dir(pki.ca_cert.parent):
        if not pki.ca_cert.exists():
            create_ca(pki)
        ca_cert, ca_key = load_ca(pki)
        if not _serving_ok(pki, ca_cert, names, ips):
            _issue_serving(pki, ca_cert, ca_key, names, ips)
    return pki


# -- client certificates -----------------------------------------------------------------------

def issue_client_cert(pki: Pki, common_name: str, organizations: Sequence[str],
                      days: int = 365) -> tuple[bytes, bytes]:
    """A new key and a client certificate (CN = user, O = groups) signed by the CA: (cert, key) PEM.

    Validity is capped at the CA's own expiry.
    """
    if not common_name:
        raise ValueError("a client certificate needs a common name (the user)")
    if days < 1:
        raise ValueError(f"a client certificate must be valid for at least one day, not {days}")
    ca_cert, ca_key = load_ca(pki)
    key = new_key()
    cert = sign_leaf(_name(common_name, organizations), key.public_key(), ca_cert, ca_key, days,
                      ExtendedKeyUsageOID.CLIENT_AUTH)
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def issue_admin_cert(pki: Pki, days: int = 365) -> tuple[bytes, bytes]:
    """The cluster administrator's client certificate (`pikube-admin`, `system:masters`)."""
    return issue_client_cert(pki, ADMIN_USER, [ADMIN_GROUP], days)


def issue_node_cert(pki: Pki, node_name: str, days: int = 365) -> tuple[bytes, bytes]:
    """A node's client certificate (`system:node:<name>`, `system:nodes`)."""
    return issue_client_cert(pki, NODE_USER_PREFIX + node_name, [NODE_GROUP], days)


def identity_from_cert(der_or_pem: bytes) -> Identity:
    """User (CN) and groups (O) of a client certificate the TLS layer has ALREADY verified.

    This only reads the subject: it must never be called on a certificate
    that was not verified against the CA during the handshake.
    """
    try:
        if der_or_pem.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(der_or_pem)
        else:
            cert = x509.load_der_x509_certificate(der_or_pem)
    except ValueError as exc:
        raise ValueError(f"not an X.509 certificate: {exc}") from exc
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or not cns[0].value:
        raise ValueError("a client certificate must have exactly one non-empty common name")
    groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return Identity(user=str(cns[0].value), groups=groups)


def _admin_kubeconfig_ok(pki: Pki, path: Path, server: str) -> bool:
    try:
        cfg = read_kubeconfig(path)
    except (OSError, ValueError):
        return False
    if cfg.server != server or cfg.ca_pem != pki.ca_pem() or cfg.cert_pem is None or cfg.key_pem is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(cfg.cert_pem)
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(cfg.ca_pem))
        key = serialization.load_pem_private_key(cfg.key_pem, password=None)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return (isinstance(key, ec.EllipticCurvePrivateKey) and same_public_key(cert, key)
            and identity_from_cert(cfg.cert_pem).is_admin
            and cert.not_valid_after_utc - utc_now() > RENEW_BEFORE)


def ensure_admin_kubeconfig(pki: Pki, path: Path, server: str, days: int = 365) -> bool:
    """Write an admin kubeconfig (0600) for `server` at `path` unless a valid one is there.

    Kept as it is when it names `server`, embeds the current CA and holds an
    admin certificate from it with more than 90 days left; True if written.
    """
    if _admin_kubeconfig_ok(pki, path, server):
        return False
    cert_pem, key_pem = issue_admin_cert(pki, days)
    write_kubeconfig(path, KubeConfig(server=server, ca_pem=pki.ca_pem(), cert_pem=cert_pem, key_pem=key_pem))
    return True
