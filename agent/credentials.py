"""The agent's identities: node credentials from the join token, and the log server's certificate.

On first start the agent trades its join token for a node client certificate
(`core.jointoken.join`, which pins the CA before sending the secret) and
keeps it as a kubeconfig in the data dir, mode 0600; later starts reuse it and
need no token. The log endpoint's serving certificate is self-signed and
pinned by the master through the node annotation `SERVING_CERT_ANNOTATION`
(only this node may write its Node object), so the join exchange needs no
second certificate. It is made in a child process (`python -m
agent.servingcert`) so the agent never loads `cryptography` (~10 MB).
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core import jointoken, wellknown
from core.fsutil import write_atomic
from core.kubeconfig import KubeConfig, read_kubeconfig, write_kubeconfig

SERVING_CERT_ANNOTATION = wellknown.SERVING_CERT_ANNOTATION
KUBECONFIG_NAME = "kubelet.kubeconfig"


class CredentialsError(Exception):
    """The agent cannot get or read its credentials; the message says what to do."""


@dataclass(frozen=True)
class ServingCert:
    cert: Path
    key: Path
    sha256: str


def kubeconfig_path(data_dir: Path) -> Path:
    return data_dir / KUBECONFIG_NAME


def ca_path(data_dir: Path) -> Path:
    return data_dir / "pki" / "ca.crt"


def ensure_node_credentials(data_dir: Path, server: str, node_name: str, token: str,
                            timeout: float = 10.0) -> KubeConfig:
    """The node's kubeconfig: read from the data dir, or made by joining with `token`."""
    path = kubeconfig_path(data_dir)
    if path.exists():
        try:
            cfg = read_kubeconfig(path)
        except ValueError as exc:
            raise CredentialsError(f"{path} is unreadable ({exc}); delete it and start again with --token") from exc
        _write_ca(data_dir, cfg.ca_pem or b"")
        return cfg
    if not token:
        raise CredentialsError(f"no node credentials in {data_dir} yet: give --token to join the cluster")
    try:
        creds = jointoken.join(token, server, node_name, timeout)
    except ValueError as exc:
        raise CredentialsError(f"the join token is malformed: {exc}") from exc
    cfg = KubeConfig(server=server if "://" in server else f"https://{server}", ca_pem=creds.ca_pem,
                     cert_pem=creds.cert_pem, key_pem=creds.key_pem)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_kubeconfig(path, cfg, user=f"system:node:{node_name}")
    _write_ca(data_dir, creds.ca_pem)
    return cfg


def _write_ca(data_dir: Path, ca_pem: bytes) -> None:
    path = ca_path(data_dir)
    if path.exists() and path.read_bytes() == ca_pem:
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, ca_pem, 0o644)  # a public certificate (the pki dir itself is 0700)


def ensure_serving_cert(data_dir: Path, node_name: str, addresses: list[str]) -> ServingCert:
    """The log server's self-signed certificate, made once (by a child process) and then reused."""
    pki = data_dir / "pki"
    cert, key = pki / "serving.crt", pki / "serving.key"
    if not (cert.exists() and key.exists()):
        pki.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [sys.executable, "-m", "agent.servingcert", str(cert), str(key), node_name, *addresses]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CredentialsError(f"cannot make the log server's certificate: {proc.stderr.strip()}")
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return ServingCert(cert=cert, key=key, sha256=hashlib.sha256(der).hexdigest())
