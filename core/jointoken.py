"""Join tokens, and joining a cluster without trusting the network first.

A worker starts with an address and a token such as
`pikube-<sha256 of the CA certificate (DER)>::abcdef.0123456789abcdef`
(k3s's `K10<hash>::secret` idea with kubeadm's `<id>.<random>` secret, so a
token can be listed and deleted by its id without showing the secret).

Joining is two steps and the order is the point:

1. `fetch_and_pin_ca`: fetch the master's CA from `GET /cacerts` over TLS
   *without* verifying it, hash it, and refuse (`CaMismatch`) unless the hash
   is the one the token carries. Then check that the server really holds a
   certificate issued by that CA (a TLS handshake verified against it).
   Nothing secret has been sent so far.
2. `request_node_credentials`: only over TLS verified against the pinned
   CA, send the secret and get this node's client certificate and key.

Both steps use only the standard library (`ssl`, `http.client`), so the
agent does not pay for importing `cryptography`.

The master's side of the contract (wired by the API server):
- `GET /cacerts`, unauthenticated: the CA certificate PEM,
  `Content-Type: application/x-pem-file`.
- `POST /pikube/v1/join`, unauthenticated TLS, JSON body
  `{"secret": "<id>.<random>", "nodeName": NAME}`: 200 or 201 with JSON
  `{"certificate": PEM, "key": PEM, "ca": PEM, ...}`; errors are
  Kubernetes `Status` objects (401 for a bad or expired token, 422 for an
  invalid node name, 409 for a node name another board already uses).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import re
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core import errors

PREFIX = "pikube-"
SEPARATOR = "::"
DEFAULT_PORT = 6443
CACERTS_PATH = "/cacerts"
JOIN_PATH = "/pikube/v1/join"
MASTER_JOIN_PATH = "/pikube/v1/join-master"
MAX_RESPONSE_BYTES = 1 << 20

_HASH_RE = re.compile(r"[0-9a-f]{64}")
_ID_RE = re.compile(r"[a-z0-9]{6}")
_RANDOM_RE = re.compile(r"[a-z0-9]{16}")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_PEM_CERT_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)
_NAME_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_SECRET_SHAPE = "<6 characters a-z0-9>.<16 characters a-z0-9>"


class JoinError(Exception):
    """Joining failed; the message says why in a sentence a user can act on."""


class MasterUnreachable(JoinError):
    """No TLS connection to the master could be made (refused, timed out, no route)."""


class CaMismatch(JoinError):
    """The master's CA is not the one the join token pins: nothing secret was sent."""


@dataclass(frozen=True)
class JoinToken:
    """A parsed join token; `secret` (`<id>.<random>`) is what the master checks."""

    ca_hash: str
    secret: str = field(repr=False)

    @property
    def token_id(self) -> str:
        return self.secret.split(".", 1)[0]

    def format(self) -> str:
        return f"{PREFIX}{self.ca_hash}{SEPARATOR}{self.secret}"


@dataclass(frozen=True)
class NodeCredentials:
    """What a node gets for a valid join token: its client certificate, key and the CA."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes


_IN_TEXT_RE = re.compile(r"\b(pikube-[0-9a-f]{64}::[a-z0-9]{6})\.[a-z0-9]{16}\b")


def redact(text: str) -> str:
    """`text` with the secret half of every join token in it replaced: for lines that go to logs or a console."""
    return _IN_TEXT_RE.sub(r"\1.<secret>", text)


def new_secret() -> str:
    """A fresh `<id>.<random>` secret (kubeadm's bootstrap-token shape)."""
    ident = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    rand = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return f"{ident}.{rand}"


def parse_secret(secret: str) -> tuple[str, str]:
    """Split `<id>.<random>` into its parts; ValueError (not echoing it) when malformed."""
    ident, dot, rand = secret.strip().partition(".")
    if not dot or not _ID_RE.fullmatch(ident) or not _RANDOM_RE.fullmatch(rand):
        raise ValueError(f"the token secret must look like {_SECRET_SHAPE}")
    return ident, rand


def parse(token: str) -> JoinToken:
    """Parse `pikube-<64 hex>::<id>.<random>`; ValueError with the reason when malformed."""
    text = token.strip()
    if not text.startswith(PREFIX):
        raise ValueError(
            f"a join token starts with {PREFIX!r} and looks like "
            f"{PREFIX}<sha256 of the CA, 64 hex digits>::{_SECRET_SHAPE}"
        )
    pin, sep, secret = text[len(PREFIX):].partition(SEPARATOR)
    if not sep:
        raise ValueError(f"a join token has {SEPARATOR!r} between the CA hash and the secret")
    pin = pin.lower()
    if len(pin) != 64:
        raise ValueError(f"the CA hash in a join token is 64 hex digits (a sha256), not {len(pin)}")
    if not _HASH_RE.fullmatch(pin):
        raise ValueError("the CA hash in a join token may hold only hex digits (0-9, a-f)")
    parse_secret(secret)
    return JoinToken(ca_hash=pin, secret=secret.strip())


def _first_cert_der(pem: bytes) -> bytes:
    match = _PEM_CERT_RE.search(pem)
    if match is None:
        raise ValueError("no PEM certificate found")
    try:
        return base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except binascii.Error as exc:
        raise ValueError("the PEM certificate is not valid base64") from exc


def ca_hash(ca_pem: bytes) -> str:
    """sha256 hex of the (first) certificate in `ca_pem`, in DER form: what a join token pins."""
    return hashlib.sha256(_first_cert_der(ca_pem)).hexdigest()


def split_server(server_url: str) -> tuple[str, int]:
    """`https://host:port`, `host:port` or `host` (port 6443) → (host, port)."""
    text = server_url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ValueError(f"the master URL must use https, not {parts.scheme!r}: {server_url}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"the master URL has an invalid port: {server_url}") from exc
    if not parts.hostname:
        raise ValueError(f"the master URL has no host: {server_url}")
    return parts.hostname, port


def _request(
    host: str, port: int, ctx: ssl.SSLContext, method: str, path: str, timeout: float,
    body: bytes | None = None, headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    """One HTTPS request; connection-level failures become `MasterUnreachable`."""
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
    try:
        try:
            conn.connect()
        except ssl.SSLCertVerificationError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise MasterUnreachable(f"cannot reach the master at {host}:{port}: {exc}") from exc
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise MasterUnreachable(
                f"the master at {host}:{port} closed the connection during {method} {path}: {exc}"
            ) from exc
        if len(data) > MAX_RESPONSE_BYTES:
            raise JoinError(f"the answer to {method} {path} from {host}:{port} is too large")
        return resp.status, resp.getheader("Content-Type", ""), data
    finally:
        conn.close()


def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pinned_context(ca_pem: bytes) -> ssl.SSLContext:
    """A client context that trusts only `ca_pem` and checks the server's name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
    return ctx


def _check_server_cert(host: str, port: int, ca_pem: bytes, timeout: float) -> None:
    """Handshake verified against the pinned CA: the server must hold a cert it issued."""
    ctx = pinned_context(ca_pem)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in _NAME_MISMATCH:
            raise JoinError(
                f"the master's certificate is issued by the pinned CA but does not name {host}; "
                "use the address the master advertised, or re-run enable-master with this one"
            ) from exc
        raise CaMismatch(
            f"the server at {host}:{port} served the pinned CA but its own certificate is not "
            f"issued by it ({exc.verify_message}); someone may be intercepting the connection"
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        raise MasterUnreachable(f"cannot reach the master at {host}:{port}: {exc}") from exc


def fetch_and_pin_ca(server_url: str, expected_hash: str, timeout: float = 10.0) -> bytes:
    """Return the master's CA PEM if its sha256 is `expected_hash`; nothing secret is sent.

    Raises `MasterUnreachable` when no connection can be made, `CaMismatch`
    when the CA (or the server's certificate) does not match the pin, and
    `JoinError` when the server answers but serves no CA.
    """
    host, port = split_server(server_url)
    want = expected_hash.strip().lower()
    status, _ctype, body = _request(host, port, _unverified_context(), "GET", CACERTS_PATH, timeout)
    if status != 200:
        raise JoinError(
            f"{host}:{port} answered GET {CACERTS_PATH} with HTTP {status}: is it a pikube master?"
        )
    try:
        der = _first_cert_der(body)
    except ValueError as exc:
        raise JoinError(
            f"{host}:{port} answered GET {CACERTS_PATH} without a PEM certificate: "
            "is it a pikube master?"
        ) from exc
    got = hashlib.sha256(der).hexdigest()
    if not secrets.compare_digest(got, want):
        raise CaMismatch(
            f"the master at {host}:{port} has CA sha256 {got}, but the join token pins {want}: "
            "check the token (run `pikube token create` on the master) and the address"
        )
    ca_pem = ssl.DER_cert_to_PEM_cert(der).encode("ascii")
    _check_server_cert(host, port, ca_pem, timeout)
    return ca_pem


def _post_pinned(server_url: str, ca_pem: bytes, path: str, payload: dict[str, str], timeout: float,
                 what: str) -> dict[str, Any]:
    """POST `payload` over TLS verified against `ca_pem`; the answer's JSON object, or the refusal raised as
    the `errors.ApiError` its Status names."""
    host, port = split_server(server_url)
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        status, _ctype, data = _request(host, port, pinned_context(ca_pem), "POST", path, timeout, body=body,
                                        headers=headers)
    except ssl.SSLCertVerificationError as exc:
        raise CaMismatch(
            f"the master at {host}:{port} is not verified by the pinned CA ({exc.verify_message})"
        ) from exc
    try:
        doc: Any = json.loads(data)
    except ValueError:
        doc = None
    if status not in (200, 201):
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            raise errors.from_status(doc, status)
        raise JoinError(f"the master refused {what} with HTTP {status}")
    if not isinstance(doc, dict):
        raise JoinError(f"the master's answer to {what} is not a JSON object")
    return doc


def request_node_credentials(
    server_url: str, ca_pem: bytes, secret: str, node_name: str, timeout: float = 10.0,
) -> NodeCredentials:
    """Exchange the token secret for node credentials over TLS verified against `ca_pem`.

    A refusal by the master is raised as the `errors.ApiError` its Status
    names (`errors.Unauthorized` for a bad token, `errors.Invalid`,
    `errors.AlreadyExists`/`errors.Conflict` for a name in use).
    """
    doc = _post_pinned(server_url, ca_pem, JOIN_PATH, {"secret": secret, "nodeName": node_name}, timeout,
                       "the join")
    if not all(isinstance(doc.get(k), str) for k in ("certificate", "key", "ca")):
        raise JoinError("the master's answer to the join has no certificate, key and ca")
    return NodeCredentials(cert_pem=doc["certificate"].encode(), key_pem=doc["key"].encode(),
                           ca_pem=doc["ca"].encode())


MASTER_JOIN_FIELDS = ("ca", "caKey", "serviceAccountKey", "etcdCa", "etcdCaKey", "initialCluster", "memberID")


def request_master_join(server_url: str, ca_pem: bytes, secret: str, node_name: str, address: str,
                        timeout: float = 30.0) -> dict[str, Any]:
    """Exchange a master token's secret for the cluster's keys and an etcd learner membership (see
    `master/api/masterjoin.py`); refusals raised as their Status's `errors.ApiError`."""
    doc = _post_pinned(server_url, ca_pem, MASTER_JOIN_PATH,
                       {"secret": secret, "nodeName": node_name, "address": address}, timeout, "the master join")
    missing = [k for k in MASTER_JOIN_FIELDS if not isinstance(doc.get(k), str) or not doc.get(k)]
    if missing:
        raise JoinError(f"the master's answer to the master join lacks {', '.join(missing)}")
    return doc


def join(token: str | JoinToken, server_url: str, node_name: str,
         timeout: float = 10.0) -> NodeCredentials:
    """The whole join: pin the CA from the token, then send the secret (never before)."""
    parsed = parse(token) if isinstance(token, str) else token
    ca_pem = fetch_and_pin_ca(server_url, parsed.ca_hash, timeout)
    return request_node_credentials(server_url, ca_pem, parsed.secret, node_name, timeout)
