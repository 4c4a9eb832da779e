"""Kubeconfig files: how kubectl, the CLI and the agent find the master and prove who they are.

`write_kubeconfig` writes a self-contained kubeconfig (CA, client
certificate and key, or a token, embedded as `*-data`) 0600 and atomically;
`read_kubeconfig` reads one back (including `certificate-authority` /
`client-certificate` / `client-key` / `tokenFile` paths, relative to the
file as kubectl resolves them) into a `KubeConfig`; `ssl_context` builds a
client TLS context from it.

`ssl.SSLContext.load_cert_chain` only reads files, so `ssl_context` hands it
an anonymous in-memory file (`memfd_create`, read through `/proc/self/fd`):
the key never touches the SD card and nothing is left behind after a
crash. Where memfd is unavailable it falls back to a private 0700 temporary
directory that is removed as soon as the chain is loaded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.fsutil import write_atomic

CLUSTER = "pikube"
USER = "pikube-admin"
CONTEXT = "pikube"


@dataclass(frozen=True)
class KubeConfig:
    """One context's server, CA and credentials (client certificate + key, or a bearer token)."""

    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render(cfg: KubeConfig, cluster: str = CLUSTER, user: str = USER, context: str = CONTEXT) -> str:
    """The kubeconfig YAML for `cfg`, everything embedded."""
    if (cfg.cert_pem is None) != (cfg.key_pem is None):
        raise ValueError("a kubeconfig needs both a client certificate and its key, or neither")
    if cfg.cert_pem is None and cfg.token is None:
        raise ValueError("a kubeconfig needs a client certificate and key, or a token")
    cluster_entry: dict[str, Any] = {"server": cfg.server}
    if cfg.ca_pem is not None:
        cluster_entry["certificate-authority-data"] = _b64(cfg.ca_pem)
    user_entry: dict[str, Any] = {}
    if cfg.cert_pem is not None and cfg.key_pem is not None:
        user_entry["client-certificate-data"] = _b64(cfg.cert_pem)
        user_entry["client-key-data"] = _b64(cfg.key_pem)
    if cfg.token is not None:
        user_entry["token"] = cfg.token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster, "cluster": cluster_entry}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def write_kubeconfig(path: Path, cfg: KubeConfig, cluster: str = CLUSTER, user: str = USER,
                     context: str = CONTEXT) -> None:
    """Write `cfg` to `path`, mode 0600, atomically (old or new file after a power cut)."""
    write_atomic(path, render(cfg, cluster, user, context), 0o600, make_parents=True)


def _named(doc: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(section[:-1])
            if isinstance(body, dict):
                return body
    raise ValueError(f"{path}: no {section[:-1]} named {name!r}")


def _material(entry: dict[str, Any], key: str, base: Path, path: Path) -> bytes | None:
    """`<key>-data` (base64) or `<key>` (a file path, relative to the kubeconfig's folder)."""
    data = entry.get(f"{key}-data")
    if data is not None:
        try:
            return base64.b64decode(str(data), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{path}: {key}-data is not valid base64") from exc
    ref = entry.get(key)
    if ref is None:
        return None
    try:
        return (base / str(ref)).read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read {key} {ref}: {exc.strerror}") from exc


def read_kubeconfig(path: Path, context: str | None = None) -> KubeConfig:
    """The server and credentials of `context` (default: the current context) in `path`."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a kubeconfig (no mapping at the top)")
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ValueError(f"{path} has no current-context; name a context")
    ctx = _named(doc, "contexts", str(ctx_name), path)
    cluster = _named(doc, "clusters", str(ctx.get("cluster")), path)
    user = _named(doc, "users", str(ctx.get("user")), path) if ctx.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise ValueError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent
    token = user.get("token")
    if token is None and user.get("tokenFile"):
        token = (_material(user, "tokenFile", base, path) or b"").decode()
    return KubeConfig(
        server=server,
        ca_pem=_material(cluster, "certificate-authority", base, path),
        cert_pem=_material(user, "client-certificate", base, path),
        key_pem=_material(user, "client-key", base, path),
        token=str(token).strip() if token is not None else None,
    )


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A path OpenSSL can read `data` from, that exists only while the block runs."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("pikube-cred", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    tmpdir = tempfile.mkdtemp(prefix="pikube-cred-")  # mode 0700
    try:
        name = os.path.join(tmpdir, "cred.pem")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield name
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def load_client_cert(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """`ctx.load_cert_chain` from memory: no certificate or key file is left on disk."""
    with _private_file(cert_pem.rstrip(b"\n") + b"\n" + key_pem) as chain:
        ctx.load_cert_chain(chain)


def ssl_context(cfg: KubeConfig) -> ssl.SSLContext:
    """A TLS client context for `cfg`: trusts its CA (or the system's), presents its client cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.ca_pem is not None:
        ctx.load_verify_locations(cadata=cfg.ca_pem.decode("ascii"))
    else:
        ctx.load_default_certs()
    if cfg.cert_pem is not None and cfg.key_pem is not None:
        load_client_cert(ctx, cfg.cert_pem, cfg.key_pem)
    return ctx


def auth_headers(cfg: KubeConfig) -> dict[str, str]:
    """HTTP headers carrying `cfg`'s bearer token, if it has one."""
    return {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
