"""The etcd members' own CA and certificates, kept apart from the cluster's CA.

Why a second CA: etcd trusts every client certificate its CA has signed, and
it holds the whole cluster's state. Signed by the cluster CA, every node's and
every admin's certificate would open etcd directly, past the API server's
authorisation; kubeadm keeps a separate etcd CA for the same reason. This CA
signs two kinds of certificate:

- each member's (`member.crt`): server and client use, because members dial
  each other on the peer port; SANs are the member's addresses, 127.0.0.1 and
  localhost, so the local master reaches it on loopback;
- the masters' client certificate (`apiserver-etcd-client.crt`), which every
  master presents to etcd.

Files live under `<master data>/pki/etcd/` and follow `master.pki`'s rules
(ECDSA P-256, keys 0600, written atomically, idempotent: the CA is made once,
a member certificate is reissued only when it no longer covers the member's
addresses, is close to expiry, or was not signed by this CA). A master that
joins an existing cluster receives the etcd CA with the cluster CA, so its
member certificate is signed by the same CA as its peers'.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from master.pki import (
    RENEW_BEFORE,
    SERVING_DAYS,
    Pki,
    PkiError,
    cert_sans,
    create_ca,
    key_pem,
    load_ca,
    load_key,
    locked_dir,
    new_key,
    same_public_key,
    sign_leaf,
    utc_now,
    write_atomic,
)

CLIENT_CN = "pikube-apiserver-etcd-client"
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1",)


@dataclass(frozen=True)
class EtcdPki:
    """Where the etcd CA, this member's certificate and the masters' client certificate live."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def member_cert(self) -> Path:
        return self.directory / "member.crt"

    @property
    def member_key(self) -> Path:
        return self.directory / "member.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "apiserver-etcd-client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "apiserver-etcd-client.key"

    def as_ca(self) -> Pki:
        """The CA half in `master.pki`'s shape (its "serving" pair is the member's)."""
        return Pki(ca_cert=self.ca_cert, ca_key=self.ca_key, serving_cert=self.member_cert,
                   serving_key=self.member_key)


def etcd_pki_paths(master_data: Path) -> EtcdPki:
    """The layout under `master_data/pki/etcd/`, without creating anything."""
    return EtcdPki(master_data / "pki" / "etcd")


def _member_sans(addresses: Sequence[str]) -> tuple[set[str], set[str]]:
    names, ips = set(_LOOPBACK_NAMES), set(_LOOPBACK_IPS)
    for raw in addresses:
        try:
            ips.add(str(ipaddress.ip_address(raw.strip().strip("[]"))))
        except ValueError as exc:
            raise ValueError(f"an etcd member is reached at an IP address, not {raw!r}") from exc
    return names, ips


def _leaf_ok(cert_path: Path, key_path: Path, ca_cert: x509.Certificate,
             names: set[str] | None = None, ips: set[str] | None = None) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = load_key(key_path)
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature, PkiError):
        return False
    have_names, have_ips = cert_sans(cert)
    fresh = cert.not_valid_after_utc - utc_now() > RENEW_BEFORE
    return same_public_key(cert, key) and fresh and (names or set()) <= have_names and (ips or set()) <= have_ips


def _write_leaf(cert_path: Path, key_path: Path, cert: x509.Certificate, key_bytes: bytes) -> None:
    write_atomic(key_path, key_bytes)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_etcd_pki(master_data: Path, member_name: str, addresses: Sequence[str]) -> EtcdPki:
    """Make what is missing: the etcd CA (once), this member's certificate, the masters' client certificate.

    `addresses`: the IP addresses other members and masters dial this member at.
    Raises ValueError for an address that is not an IP, PkiError when the CA is unusable.
    """
    names, ips = _member_sans(addresses)
    paths = etcd_pki_paths(master_data)
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locked_dir(paths.directory):
        ca = paths.as_ca()
        if not paths.ca_cert.exists():
            create_ca(ca, label="pikube-etcd-ca")
        ca_cert, ca_key = load_ca(ca)
        if not _leaf_ok(paths.member_cert, paths.member_key, ca_cert, names, ips):
            key = new_key()
            sans: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(names)]
            sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(ips)]
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_name)])
            cert = sign_leaf(subject, key.public_key(), ca_cert, ca_key, SERVING_DAYS,
                             (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH), sans)
            _write_leaf(paths.member_cert, paths.member_key, cert, key_pem(key))
        if not _leaf_ok(paths.client_cert, paths.client_key, ca_cert):
            key = new_key()
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CLIENT_CN)])
            cert = sign_leaf(subject, key.public_key(), ca_cert, ca_key, SERVING_DAYS,
                             ExtendedKeyUsageOID.CLIENT_AUTH)
            _write_leaf(paths.client_cert, paths.client_key, cert, key_pem(key))
    return paths
