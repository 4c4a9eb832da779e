"""Service account tokens: the master's signing key, the JWTs it issues, and checking the ones clients present.

Kubernetes' two kinds, both JSON Web Tokens signed with ES256 by the key in
`DATA/pki/sa.key` (made once, beside the CA; a second master needs a copy of
both, see docs/store.md):
- **bound tokens** (TokenRequest, what every pod's projected volume holds):
  `iss` the issuer (`https://kubernetes.default.svc.cluster.local` by
  default), `sub` `system:serviceaccount:NS:NAME`, `aud`, `exp`, `iat`, `nbf`,
  `jti`, and `kubernetes.io` naming the namespace, the service account and the
  pod or secret it is bound to (each with its uid);
- **legacy tokens** (Secrets of type `kubernetes.io/service-account-token`),
  issuer `kubernetes/serviceaccount`, no expiry, valid while their Secret
  holds them.

A token authenticates only while everything it names still exists with the
uid it names — the service account, and the pod or secret it is bound to —
so deleting a pod or a service account revokes its tokens at once. Signatures
are checked once per token (a bounded cache); expiry and the objects are
checked on every request, against the store's cache.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from core.fsutil import write_atomic
from master.registry.rbacindex import AUTHENTICATED, serviceaccount_user
from master.store.base import Store

Obj = dict[str, Any]
LEGACY_ISSUER = "kubernetes/serviceaccount"
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
SERVICEACCOUNTS = "system:serviceaccounts"
_CACHE = 4096
_LEEWAY = 60  # seconds of clock difference allowed on nbf/iat, as Kubernetes' validator allows


class InvalidToken(Exception):
    """The token is not one this master issued, or no longer stands."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key at `path`, made (P-256, mode 0600) when missing."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:  # two masters starting at once on a shared directory: the first one's key stands
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            write_atomic(path, pem, 0o600)
    loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
        raise ValueError(f"{path} is not a P-256 key")
    return loaded


def identity_of(namespace: str, name: str) -> tuple[str, tuple[str, ...]]:
    """A service account's user name and groups, as Kubernetes' authenticator gives them."""
    return serviceaccount_user(namespace, name), (SERVICEACCOUNTS, f"{SERVICEACCOUNTS}:{namespace}", AUTHENTICATED)


class ServiceAccountTokens:
    def __init__(self, key_path: Path, issuer: str, store: Store | None = None,
                 clock: Any = time.time) -> None:
        self.key = load_or_create_key(key_path)
        self.issuer = issuer
        self.audiences = (issuer,)
        self.store = store
        self.clock = clock
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())
        self._verified: OrderedDict[str, Obj] = OrderedDict()
        self._lock = threading.Lock()

    # --- issuing ---------------------------------------------------------------------------------------------
    def sign(self, claims: Obj) -> str:
        header = _b64(json.dumps({"alg": "ES256", "kid": self.kid}, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        der = self.key.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{header}.{body}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def bound(self, namespace: str, sa: Obj, audiences: list[str], seconds: int, bound_to: Obj | None = None,
              ) -> tuple[str, int]:
        """A bound token for service account `sa` and its expiry (Unix seconds)."""
        now = int(self.clock())
        meta = sa.get("metadata") or {}
        ours: Obj = {"namespace": namespace,
                     "serviceaccount": {"name": meta.get("name"), "uid": meta.get("uid")}}
        if bound_to is not None:
            kind = str(bound_to.get("kind") or "").lower()
            ours[kind] = {"name": bound_to.get("name"), "uid": bound_to.get("uid")}
        claims = {"aud": list(audiences), "exp": now + seconds, "iat": now, "iss": self.issuer,
                  "jti": str(uuid.uuid4()), "kubernetes.io": ours, "nbf": now,
                  "sub": serviceaccount_user(namespace, str(meta.get("name")))}
        return self.sign(claims), now + seconds

    def legacy(self, namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        return self.sign({"iss": LEGACY_ISSUER, "kubernetes.io/serviceaccount/namespace": namespace,
                          "kubernetes.io/serviceaccount/secret.name": secret_name,
                          "kubernetes.io/serviceaccount/service-account.name": sa_name,
                          "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
                          "sub": serviceaccount_user(namespace, sa_name)})

    def jwks(self) -> Obj:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
                          "x": _b64(numbers.x.to_bytes(32, "big")), "y": _b64(numbers.y.to_bytes(32, "big"))}]}

    # --- checking -------------------------------------------------------------------------------------------
    def claims(self, token: str) -> Obj:
        """The claims of a token this key signed (signature checked once per token); InvalidToken otherwise."""
        with self._lock:
            hit = self._verified.get(token)
            if hit is not None:
                self._verified.move_to_end(token)
                return hit
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a JWT")
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error) as exc:
            raise InvalidToken("malformed") from exc
        if not isinstance(header, dict) or header.get("alg") != "ES256" or not isinstance(claims, dict):
            raise InvalidToken("not an ES256 token")
        if header.get("kid") not in (None, "", self.kid) or len(signature) != 64:
            raise InvalidToken("signed by another key")
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            self.key.public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise InvalidToken("bad signature") from exc
        with self._lock:
            self._verified[token] = claims
            while len(self._verified) > _CACHE:
                self._verified.popitem(last=False)
        return claims

    def authenticate(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        """The user and groups a presented token stands for, or None (a 401)."""
        try:
            claims = self.claims(token)
            if claims.get("iss") == LEGACY_ISSUER:
                namespace, name = self._check_legacy(token, claims)
            else:
                namespace, name = self._check_bound(claims)
        except (InvalidToken, KeyError, TypeError, ValueError, AttributeError):
            return None
        return identity_of(namespace, name)

    def _get(self, key: str) -> Obj | None:
        return self.store.get(key) if self.store is not None else None

    def _check_account(self, namespace: str, name: str, uid: str | None) -> None:
        sa = self._get(f"/core/serviceaccounts/{namespace}/{name}")
        if sa is None or (uid and sa["metadata"].get("uid") != uid):
            raise InvalidToken(f"service account {namespace}/{name} is gone")

    def _check_bound(self, claims: Obj) -> tuple[str, str]:
        now = self.clock()
        if claims.get("iss") != self.issuer:
            raise InvalidToken("another issuer")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise InvalidToken("expired")
        if isinstance(claims.get("nbf"), int) and claims["nbf"] > now + _LEEWAY:
            raise InvalidToken("not valid yet")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences or []
        if not set(audiences) & set(self.audiences):
            raise InvalidToken("for another audience")
        ours = claims["kubernetes.io"]
        namespace, sa = str(ours["namespace"]), ours["serviceaccount"]
        self._check_account(namespace, str(sa["name"]), sa.get("uid"))
        for kind, plural in (("pod", "pods"), ("secret", "secrets")):
            ref = ours.get(kind)
            if ref:
                found = self._get(f"/core/{plural}/{namespace}/{ref['name']}")
                if found is None or found["metadata"].get("uid") != ref.get("uid"):
                    raise InvalidToken(f"the {kind} it is bound to is gone")
        return namespace, str(sa["name"])

    def _check_legacy(self, token: str, claims: Obj) -> tuple[str, str]:
        namespace = str(claims["kubernetes.io/serviceaccount/namespace"])
        secret = self._get(f"/core/secrets/{namespace}/{claims['kubernetes.io/serviceaccount/secret.name']}")
        if secret is None or secret.get("type") != TOKEN_SECRET_TYPE:
            raise InvalidToken("its secret is gone")
        held = (secret.get("data") or {}).get("token")
        if not held or base64.b64decode(held).decode() != token:
            raise InvalidToken("its secret holds another token")
        name = str(claims["kubernetes.io/serviceaccount/service-account.name"])
        self._check_account(namespace, name, str(claims["kubernetes.io/serviceaccount/service-account.uid"]))
        return namespace, name
