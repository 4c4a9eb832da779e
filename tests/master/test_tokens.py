"""The master's join-token store and the token → node credentials exchange."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from core import errors, jointoken
from master import pki
from master.tokens import TokenStore, issue_node_credentials, validate_node_name
from tests.core.test_jointoken import FakeMaster, start_master  # noqa: F401  (fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure_pki(tmp_path_factory.mktemp("master"), ["localhost"], [])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, cluster: pki.Pki, clock: Clock) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json", pki.ca_hash(cluster.ca_pem()), clock=clock)


def test_created_token_pins_the_ca_and_validates(store: TokenStore, cluster: pki.Pki) -> None:
    tok = jointoken.parse(store.create(ttl=None, description="for pi-2"))
    assert tok.ca_hash == pki.ca_hash(cluster.ca_pem())
    assert store.validate(tok.secret)
    assert store.validate(f" {tok.secret}\n")


def test_wrong_unknown_and_malformed_secrets_are_refused(store: TokenStore) -> None:
    tok = jointoken.parse(store.create(ttl=None, description=""))
    wrong = tok.secret[:-1] + ("a" if tok.secret[-1] != "a" else "b")  # one character off
    assert not store.validate(wrong)
    assert not store.validate("zzzzzz." + tok.secret.split(".")[1])
    assert not store.validate(tok.token_id)
    assert not store.validate("")
    assert not store.validate(tok.format())  # the whole token is not the secret


def test_file_is_private_and_holds_no_secret(store: TokenStore) -> None:
    tok = jointoken.parse(store.create(ttl=60, description="d"))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    text = store.path.read_text()
    assert tok.secret.split(".")[1] not in text
    entry = json.loads(text)["tokens"][tok.token_id]
    assert set(entry) == {"salt", "hash", "description", "created", "expires"}


def test_every_token_has_its_own_salt(tmp_path: Path) -> None:
    a = TokenStore(tmp_path / "a.json", "h")
    a.create(None, "")
    a.create(None, "")
    hashes = [v["hash"] for v in json.loads(a.path.read_text())["tokens"].values()]
    salts = [v["salt"] for v in json.loads(a.path.read_text())["tokens"].values()]
    assert len(set(hashes)) == 2 and len(set(salts)) == 2


def test_expired_tokens_are_refused_then_pruned(store: TokenStore, clock: Clock) -> None:
    short = jointoken.parse(store.create(ttl=60, description="short"))
    forever = jointoken.parse(store.create(ttl=None, description="forever"))
    clock.now += 59
    assert store.validate(short.secret)
    clock.now += 1
    assert not store.validate(short.secret)
    assert store.validate(forever.secret)
    info = {i.token_id: i for i in store.list()}
    assert info[short.token_id].expired(clock.now) and not info[forever.token_id].expired(clock.now)
    store.create(ttl=10, description="new")
    assert short.token_id not in {i.token_id for i in store.list()}


def test_list_shows_ids_and_descriptions_oldest_first(store: TokenStore, clock: Clock) -> None:
    first = jointoken.parse(store.create(ttl=3600, description="first"))
    clock.now += 1
    second = jointoken.parse(store.create(ttl=None, description="second"))
    infos = store.list()
    want = [(first.token_id, "first"), (second.token_id, "second")]
    assert [(i.token_id, i.description) for i in infos] == want
    assert infos[0].expires == infos[0].created + 3600 and infos[1].expires is None
    assert not any(hasattr(i, "secret") for i in infos)


def test_delete_by_id_revokes(store: TokenStore) -> None:
    tok = jointoken.parse(store.create(ttl=None, description=""))
    assert store.delete(tok.token_id)
    assert not store.validate(tok.secret)
    assert not store.delete(tok.token_id)
    assert store.list() == []


def test_another_process_sees_new_and_deleted_tokens(store: TokenStore, cluster: pki.Pki) -> None:
    """`pikube token create` runs beside the master: both work on the same file."""
    master_side = TokenStore(store.path, store.ca_hash)
    tok = jointoken.parse(store.create(ttl=None, description=""))
    assert master_side.validate(tok.secret)
    store.delete(tok.token_id)
    assert not master_side.validate(tok.secret)


@pytest.mark.parametrize(("ttl", "description", "message"), [
    (0, "", "positive"), (-5, "", "positive"), (float("nan"), "", "positive"),
    (None, "x" * 300, "one line"), (None, "a\nb", "one line"),
])
def test_bad_create_arguments(store: TokenStore, ttl: float | None, description: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.create(ttl=ttl, description=description)
    assert not store.path.exists()


def test_corrupt_file_is_reported(store: TokenStore) -> None:
    store.path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        store.list()


def test_for_pki_uses_the_cluster_ca_hash(tmp_path: Path, cluster: pki.Pki) -> None:
    s = TokenStore.for_pki(tmp_path, cluster)
    assert s.path == tmp_path / "tokens.json" and s.ca_hash == pki.ca_hash(cluster.ca_pem())


# -- issuing node credentials ------------------------------------------------------------------

def test_valid_token_buys_a_node_certificate(store: TokenStore, cluster: pki.Pki) -> None:
    tok = jointoken.parse(store.create(ttl=None, description=""))
    creds = issue_node_credentials(cluster, store, tok.secret, "pi-2")
    cert = x509.load_pem_x509_certificate(creds.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(creds.ca_pem))
    assert creds.ca_pem == cluster.ca_pem()
    identity = pki.identity_from_cert(creds.cert_pem)
    assert identity.node_name == "pi-2" and identity.groups == ("system:nodes",)


def test_bad_or_expired_token_is_unauthorized(store: TokenStore, cluster: pki.Pki, clock: Clock) -> None:
    tok = jointoken.parse(store.create(ttl=5, description=""))
    with pytest.raises(errors.Unauthorized) as info:
        issue_node_credentials(cluster, store, "abcdef.0123456789abcdef", "pi-2")
    assert info.value.status()["code"] == 401
    clock.now += 5
    with pytest.raises(errors.Unauthorized):
        issue_node_credentials(cluster, store, tok.secret, "pi-2")


def test_token_is_checked_before_the_node_name(store: TokenStore, cluster: pki.Pki) -> None:
    with pytest.raises(errors.Unauthorized):
        issue_node_credentials(cluster, store, "abcdef.0123456789abcdef", "Not_A_Name")


@pytest.mark.parametrize("name", ["Pi-2", "pi_2", "-pi", "pi-", "", "a" * 254, "pi..2"])
def test_invalid_node_names(store: TokenStore, cluster: pki.Pki, name: str) -> None:
    tok = jointoken.parse(store.create(ttl=None, description=""))
    with pytest.raises(errors.Invalid) as info:
        issue_node_credentials(cluster, store, tok.secret, name)
    status = info.value.status()
    assert status["code"] == 422 and status["details"]["causes"][0]["field"] == "metadata.name"


@pytest.mark.parametrize("name", ["pi-2", "worker.lan", "a" * 253, "0"])
def test_valid_node_names(name: str) -> None:
    validate_node_name(name)


def test_agent_join_against_the_real_exchange(store: TokenStore, cluster: pki.Pki,
                                              start_master: Callable[..., FakeMaster]) -> None:  # noqa: F811
    """The agent's `jointoken.join` and the master's `issue_node_credentials`, end to end over TLS."""

    def on_join(secret: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        try:
            creds = issue_node_credentials(cluster, store, secret, str(body.get("nodeName")))
        except errors.ApiError as exc:
            return exc.code, exc.status()
        return 201, {"certificate": creds.cert_pem.decode(), "key": creds.key_pem.decode(),
                     "ca": creds.ca_pem.decode()}

    fake = start_master(cluster, cluster.ca_pem(), on_join=on_join)
    token = store.create(ttl=600, description="")
    creds = jointoken.join(token, fake.url, "pi-3", timeout=5)
    assert pki.identity_from_cert(creds.cert_pem).node_name == "pi-3"
    with pytest.raises(errors.Invalid):
        jointoken.join(token, fake.url, "PI 3", timeout=5)
    store.delete(jointoken.parse(token).token_id)
    with pytest.raises(errors.Unauthorized):
        jointoken.join(token, fake.url, "pi-3", timeout=5)
