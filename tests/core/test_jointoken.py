"""Join tokens: parsing, and pinning the master's CA against a real TLS server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core import errors, jointoken
from core.jointoken import CaMismatch, JoinError, JoinToken, MasterUnreachable
from master import pki

HASH = "0123456789abcdef" * 4
SECRET = "abcdef.0123456789abcdef"


# -- the token format --------------------------------------------------------------------------

def test_parse_and_format_round_trip() -> None:
    tok = jointoken.parse(f"  pikube-{HASH.upper()}::{SECRET}\n")
    assert tok == JoinToken(ca_hash=HASH, secret=SECRET)
    assert tok.token_id == "abcdef"
    assert tok.format() == f"pikube-{HASH}::{SECRET}"
    assert jointoken.parse(tok.format()) == tok


def test_repr_does_not_show_the_secret() -> None:
    tok = jointoken.parse(f"pikube-{HASH}::{SECRET}")
    assert "0123456789abcdef" not in repr(tok).replace(HASH, "")
    creds = jointoken.NodeCredentials(cert_pem=b"c", key_pem=b"TOPSECRETKEY", ca_pem=b"a")
    assert "TOPSECRETKEY" not in repr(creds)


@pytest.mark.parametrize(("token", "message"), [
    ("", "starts with 'pikube-'"),
    (f"K10{HASH}::{SECRET}", "starts with 'pikube-'"),
    (f"pikube-{HASH}{SECRET}", "'::' between"),
    (f"pikube-{HASH[:-1]}::{SECRET}", "64 hex digits .* not 63"),
    (f"pikube-{'g' * 64}::{SECRET}", "only hex digits"),
    (f"pikube-{HASH}::", "secret must look like"),
    (f"pikube-{HASH}::abcdef0123456789abcdef", "secret must look like"),
    (f"pikube-{HASH}::ABCDEF.0123456789abcdef", "secret must look like"),
    (f"pikube-{HASH}::abcdef.0123456789abcde", "secret must look like"),
    (f"pikube-{HASH}::abcdef.0123456789abcdef.x", "secret must look like"),
])
def test_malformed_tokens_say_what_is_wrong(token: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        jointoken.parse(token)
    assert "0123456789abcdef" not in str(info.value)  # the secret is never echoed


def test_new_secrets_parse_and_differ() -> None:
    made = {jointoken.new_secret() for _ in range(50)}
    assert len(made) == 50
    for s in made:
        ident, rand = jointoken.parse_secret(s)
        assert len(ident) == 6 and len(rand) == 16


@pytest.mark.parametrize(("url", "want"), [
    ("https://192.168.1.10:6443", ("192.168.1.10", 6443)),
    ("192.168.1.10", ("192.168.1.10", 6443)),
    ("pi-1:7443", ("pi-1", 7443)),
    ("https://[fd00::1]:6443/", ("fd00::1", 6443)),
])
def test_server_addresses(url: str, want: tuple[str, int]) -> None:
    assert jointoken.split_server(url) == want


@pytest.mark.parametrize("url", ["http://pi-1:6443", "https://:6443", "pi-1:port"])
def test_bad_server_addresses(url: str) -> None:
    with pytest.raises(ValueError, match="master URL"):
        jointoken.split_server(url)


def test_ca_hash_needs_a_certificate() -> None:
    with pytest.raises(ValueError, match="no PEM certificate"):
        jointoken.ca_hash(b"hello")


# -- a master stand-in on 127.0.0.1 ------------------------------------------------------------

@dataclass
class FakeMaster:
    """A TLS HTTP server serving `/cacerts` and the join endpoint; records every byte it was sent."""

    url: str
    received: list[bytes] = field(default_factory=list)

    def saw(self, text: str) -> bool:
        return any(text.encode() in r for r in self.received)


JoinHandler = Callable[[str, dict[str, object]], tuple[int, dict[str, object]]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure_pki(tmp_path_factory.mktemp("master"), ["localhost"], [])


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure_pki(tmp_path_factory.mktemp("other"), ["localhost"], [])


@pytest.fixture
def start_master() -> Iterator[Callable[..., FakeMaster]]:
    servers: list[ThreadingHTTPServer] = []

    def start(serving: pki.Pki, served_ca: bytes, on_join: JoinHandler | None = None,
              cacerts_status: int = 200, bind: str = "127.0.0.1") -> FakeMaster:
        fake = FakeMaster(url="")

        class Handler(BaseHTTPRequestHandler):
            def _record(self, body: bytes = b"") -> None:
                fake.received.append(self.requestline.encode() + bytes(self.headers) + body)

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._record()
                if self.path == jointoken.CACERTS_PATH and cacerts_status == 200:
                    self._send(200, "application/x-pem-file", served_ca)
                else:
                    self._send(cacerts_status if cacerts_status != 200 else 404, "text/plain", b"no")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._record(body)
                if self.path != jointoken.JOIN_PATH or on_join is None:
                    self._send(404, "text/plain", b"no")
                    return
                doc_in = json.loads(body)
                status, doc = on_join(str(doc_in.get("secret", "")), doc_in)
                self._send(status, "application/json", json.dumps(doc).encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(serving.serving_cert, serving.serving_key)
        httpd = ThreadingHTTPServer((bind, 0), Handler)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        fake.url = f"https://{bind}:{httpd.server_address[1]}"
        return fake

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _hash(p: pki.Pki) -> str:
    der = x509.load_pem_x509_certificate(p.ca_pem()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _token(p: pki.Pki) -> str:
    return JoinToken(ca_hash=_hash(p), secret=SECRET).format()


# -- fetch_and_pin_ca --------------------------------------------------------------------------

def test_pinned_ca_is_returned_when_the_hash_matches(cluster: pki.Pki,
                                                     start_master: Callable[..., FakeMaster]) -> None:
    fake = start_master(cluster, cluster.ca_pem())
    got = jointoken.fetch_and_pin_ca(fake.url, _hash(cluster), timeout=5)
    assert x509.load_pem_x509_certificate(got) == x509.load_pem_x509_certificate(cluster.ca_pem())
    assert jointoken.ca_hash(got) == _hash(cluster)


def test_only_the_pinned_certificate_is_returned_from_a_bundle(
        cluster: pki.Pki, other: pki.Pki, start_master: Callable[..., FakeMaster]) -> None:
    fake = start_master(cluster, cluster.ca_pem() + other.ca_pem())
    got = jointoken.fetch_and_pin_ca(fake.url, _hash(cluster), timeout=5)
    assert got.count(b"BEGIN CERTIFICATE") == 1 and jointoken.ca_hash(got) == _hash(cluster)


def test_other_ca_raises_ca_mismatch_and_the_secret_is_never_sent(
        cluster: pki.Pki, other: pki.Pki, start_master: Callable[..., FakeMaster]) -> None:
    fake = start_master(other, other.ca_pem(), on_join=lambda s, b: (201, {}))
    with pytest.raises(CaMismatch, match=f"pins {_hash(cluster)}"):
        jointoken.join(_token(cluster), fake.url, "pi-2", timeout=5)
    assert fake.received, "the CA was never asked for"
    assert not fake.saw(SECRET) and not fake.saw("0123456789abcdef")
    assert all(r.startswith(b"GET /cacerts ") for r in fake.received)


def test_interceptor_serving_the_real_ca_is_caught_before_the_secret(
        cluster: pki.Pki, other: pki.Pki, start_master: Callable[..., FakeMaster]) -> None:
    """The CA is public: a server can hand out the right PEM, but cannot hold a cert it issued."""
    fake = start_master(other, cluster.ca_pem(), on_join=lambda s, b: (201, {}))
    with pytest.raises(CaMismatch, match="not issued by it"):
        jointoken.join(_token(cluster), fake.url, "pi-2", timeout=5)
    assert not fake.saw(SECRET)


def test_an_address_the_serving_cert_does_not_name_is_its_own_error(
        cluster: pki.Pki, start_master: Callable[..., FakeMaster]) -> None:
    fake = start_master(cluster, cluster.ca_pem(), bind="127.0.0.2")  # loopback, not in the SANs
    with pytest.raises(JoinError, match=r"does not name 127\.0\.0\.2") as info:
        jointoken.fetch_and_pin_ca(fake.url, _hash(cluster), timeout=5)
    assert not isinstance(info.value, CaMismatch)


def test_closed_port_is_master_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        with pytest.raises(MasterUnreachable, match=f"127.0.0.1:{port}"):
            jointoken.fetch_and_pin_ca(f"https://127.0.0.1:{port}", HASH, timeout=5)


def test_plain_tcp_server_that_hangs_is_master_unreachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(MasterUnreachable):
            jointoken.fetch_and_pin_ca(f"127.0.0.1:{port}", HASH, timeout=0.5)


def test_a_server_without_cacerts_is_a_join_error(cluster: pki.Pki,
                                                  start_master: Callable[..., FakeMaster]) -> None:
    fake = start_master(cluster, b"", cacerts_status=404)
    with pytest.raises(JoinError, match="HTTP 404") as info:
        jointoken.fetch_and_pin_ca(fake.url, _hash(cluster), timeout=5)
    assert not isinstance(info.value, (CaMismatch, MasterUnreachable))
    fake = start_master(cluster, b"not a certificate")
    with pytest.raises(JoinError, match="without a PEM certificate"):
        jointoken.fetch_and_pin_ca(fake.url, _hash(cluster), timeout=5)


# -- the whole join ----------------------------------------------------------------------------

def test_join_sends_the_secret_only_after_pinning_and_returns_credentials(
        cluster: pki.Pki, start_master: Callable[..., FakeMaster]) -> None:
    cert, key = pki.issue_node_cert(cluster, "pi-2")
    seen: list[tuple[str, object]] = []

    def on_join(secret: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        seen.append((secret, body.get("nodeName")))
        return 201, {"certificate": cert.decode(), "key": key.decode(), "ca": cluster.ca_pem().decode()}

    fake = start_master(cluster, cluster.ca_pem(), on_join=on_join)
    creds = jointoken.join(_token(cluster), fake.url, "pi-2", timeout=5)
    assert creds == jointoken.NodeCredentials(cert_pem=cert, key_pem=key, ca_pem=cluster.ca_pem())
    assert seen == [(SECRET, "pi-2")]
    lines = [r.split(b" ", 2)[:2] for r in fake.received]
    assert lines == [[b"GET", b"/cacerts"], [b"POST", b"/pikube/v1/join"]]
    assert SECRET.encode() not in fake.received[0] and SECRET.encode() in fake.received[1]


def test_a_refused_join_raises_the_status_error(cluster: pki.Pki,
                                                start_master: Callable[..., FakeMaster]) -> None:
    status = errors.Unauthorized(message="the join token is invalid or has expired").status()
    fake = start_master(cluster, cluster.ca_pem(), on_join=lambda s, b: (401, status))
    with pytest.raises(errors.Unauthorized, match="invalid or has expired"):
        jointoken.join(_token(cluster), fake.url, "pi-2", timeout=5)
    conflict = errors.AlreadyExists(message='nodes "pi-2" already exists', kind="nodes", name="pi-2")
    fake = start_master(cluster, cluster.ca_pem(), on_join=lambda s, b: (409, conflict.status()))
    with pytest.raises(errors.AlreadyExists):
        jointoken.join(_token(cluster), fake.url, "pi-2", timeout=5)


def test_a_join_answer_without_credentials_is_a_join_error(
        cluster: pki.Pki, start_master: Callable[..., FakeMaster]) -> None:
    fake = start_master(cluster, cluster.ca_pem(), on_join=lambda s, b: (201, {"certificate": "x"}))
    with pytest.raises(JoinError, match="no certificate, key and ca"):
        jointoken.join(_token(cluster), fake.url, "pi-2", timeout=5)


def test_redact_hides_the_secret_half_of_a_token_in_any_text() -> None:
    token = "pikube-" + "ab" * 32 + "::abc123.0123456789abcdef"
    line = f"    sudo enable-worker 10.0.0.1 --token {token}\n"
    out = jointoken.redact(line)
    assert "0123456789abcdef" not in out
    assert out == line.replace(".0123456789abcdef", ".<secret>")
    assert jointoken.redact("no token here") == "no token here"
