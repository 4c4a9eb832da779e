"""Join tokens on the master's side: a small store, and trading a valid token for node credentials.

The store is one JSON file in the master's data dir (`tokens.json`, 0600,
replaced atomically), so `pikube token create|list|delete` can run as its own
process beside the running master: writers take a file lock, and `validate`
re-reads the file, which is tiny and read only when a node joins. Only a
salted HMAC-SHA256 of each secret is stored and compared in constant time;
the token id (the part before the dot) is public, so tokens can be listed
and deleted by id. Expired tokens are refused, listed until the next
`create` prunes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import errors
from core.jointoken import JoinToken, NodeCredentials, ca_hash, new_secret, parse_secret
from master.pki import Pki, issue_node_cert, write_atomic

__all__ = ["TokenInfo", "TokenStore", "issue_node_credentials", "validate_node_name"]

FILE_NAME = "tokens.json"
MAX_DESCRIPTION = 256
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class TokenInfo:
    """What `list` shows about a token: never its secret."""

    token_id: str
    description: str
    created: float
    expires: float | None
    # May add masters (hands out the cluster's CA keys with the join), not only workers.
    masters: bool = False

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


def _digest(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()


class TokenStore:
    """The join tokens of one cluster, kept in `path`; `ca_hash` goes into every full token."""

    def __init__(self, path: Path, ca_hash: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.ca_hash = ca_hash
        self._clock = clock

    @classmethod
    def for_pki(cls, data_dir: Path, pki: Pki) -> TokenStore:
        """The store in `data_dir` for the cluster whose CA is `pki.ca_cert`."""
        return cls(data_dir / FILE_NAME, ca_hash(pki.ca_pem()))

    # -- file --------------------------------------------------------------------------------

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.path} is not valid JSON; fix or delete it: {exc}") from exc
        tokens = doc.get("tokens") if isinstance(doc, dict) else None
        if not isinstance(tokens, dict):
            raise ValueError(f"{self.path} has no 'tokens' mapping; fix or delete it")
        return tokens

    def _write(self, tokens: dict[str, dict[str, Any]]) -> None:
        data = json.dumps({"version": 1, "tokens": tokens}, indent=1, sort_keys=True).encode()
        write_atomic(self.path, data, 0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._read()
        finally:
            os.close(fd)

    # -- API ---------------------------------------------------------------------------------

    def create(self, ttl: float | None, description: str = "", masters: bool = False) -> str:
        """A new token, valid for `ttl` seconds (None: until deleted): the full `pikube-…::…` string.

        `masters`: it may also join masters, which receive the cluster's CA keys; a worker's token never can."""
        if ttl is not None and not ttl > 0:
            raise ValueError(f"a token's time to live must be positive seconds, not {ttl}")
        if len(description) > MAX_DESCRIPTION or any(ord(c) < 32 for c in description):
            raise ValueError(f"a token description is one line of at most {MAX_DESCRIPTION} characters")
        now = self._clock()
        with self._locked() as tokens:
            tokens = {k: v for k, v in tokens.items()
                      if v.get("expires") is None or float(v["expires"]) > now}
            secret = new_secret()
            while secret.split(".", 1)[0] in tokens:
                secret = new_secret()
            salt = secrets.token_bytes(16)
            tokens[secret.split(".", 1)[0]] = {
                "salt": salt.hex(), "hash": _digest(salt, secret), "description": description,
                "created": now, "expires": None if ttl is None else now + ttl,
                **({"masters": True} if masters else {}),
            }
            self._write(tokens)
        return JoinToken(ca_hash=self.ca_hash, secret=secret).format()

    def list(self) -> list[TokenInfo]:
        """Every stored token (expired ones too, until pruned), oldest first."""
        infos = [
            TokenInfo(token_id=k, description=str(v.get("description", "")),
                      created=float(v.get("created", 0.0)),
                      expires=None if v.get("expires") is None else float(v["expires"]),
                      masters=bool(v.get("masters", False)))
            for k, v in self._read().items()
        ]
        return sorted(infos, key=lambda i: (i.created, i.token_id))

    def delete(self, token_id: str) -> bool:
        """Remove the token with this id; False if there was none."""
        with self._locked() as tokens:
            if token_id not in tokens:
                return False
            del tokens[token_id]
            self._write(tokens)
        return True

    def validate(self, secret: str, masters: bool = False) -> bool:
        """True if `secret` (`<id>.<random>`) is a stored, unexpired token (one made to join masters, if
        `masters`)."""
        try:
            ident, _rand = parse_secret(secret)
        except ValueError:
            return False
        entry = self._read().get(ident)
        if entry is None or (masters and not entry.get("masters")):
            return False
        expires = entry.get("expires")
        if expires is not None and self._clock() >= float(expires):
            return False
        want = str(entry.get("hash", ""))
        got = _digest(bytes.fromhex(str(entry.get("salt", ""))), secret.strip())
        return hmac.compare_digest(got, want)


def validate_node_name(node_name: str) -> None:
    """Raise `errors.Invalid` unless `node_name` is a DNS-1123 subdomain (what a Node's name must be)."""
    problem = None
    if not node_name:
        problem = "must not be empty"
    elif len(node_name) > 253:
        problem = "must be no more than 253 characters"
    elif not _DNS1123_SUBDOMAIN.fullmatch(node_name):
        problem = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                   "'-' or '.', and must start and end with an alphanumeric character")
    if problem:
        raise errors.Invalid(
            message=f'Node "{node_name}" is invalid: metadata.name: Invalid value: "{node_name}": {problem}',
            kind="Node", name=node_name,
            causes=[errors.Cause(field="metadata.name", message=f'Invalid value: "{node_name}": {problem}')],
        )


def issue_node_credentials(pki: Pki, tokens: TokenStore, secret: str, node_name: str,
                           days: int = 365) -> NodeCredentials:
    """Trade a valid join-token secret for `node_name`'s client certificate, key and the CA.

    `errors.Unauthorized` for a bad or expired token (checked first, so an
    unauthenticated caller learns nothing else), `errors.Invalid` for a name
    that cannot be a Node's. Whether the name is already taken is the API
    server's check (it knows the Nodes).
    """
    if not tokens.validate(secret):
        raise errors.Unauthorized(message="the join token is invalid or has expired")
    validate_node_name(node_name)
    cert_pem, key_pem = issue_node_cert(pki, node_name, days)
    return NodeCredentials(cert_pem=cert_pem, key_pem=key_pem, ca_pem=pki.ca_pem())
