"""`python -m agent.servingcert CERT KEY NODE [ADDRESS...]`: a self-signed serving certificate.

Run as a child process by `agent.credentials` so the long-running agent never
imports `cryptography`. ECDSA P-256, ten years; the master pins its sha256
(published as a node annotation) instead of trusting a name in it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.fsutil import write_atomic


def make(node_name: str, addresses: list[str]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(node_name)]
    for a in addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(a)))
        except ValueError:
            sans.append(x509.DNSName(a))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: python -m agent.servingcert CERT KEY NODE [ADDRESS...]", file=sys.stderr)
        return 2
    cert_pem, key_pem = make(argv[2], argv[3:])
    write_atomic(Path(argv[1]), key_pem, 0o600)
    write_atomic(Path(argv[0]), cert_pem, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
