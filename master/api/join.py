"""Joining: a board trades a join token for its own node credentials.

The board has already checked our CA against the hash its token pins before it
sends the secret (see `core.jointoken`); here the secret is checked, the node
name is refused if a live board uses it, and a node client certificate is issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Request

from core import errors, wellknown
from master.api import body as bodies
from master.pki import Pki
from master.registry.verbs import Handlers
from master.tokens import TokenStore, issue_node_credentials

Obj = dict[str, Any]


@dataclass(frozen=True)
class JoinService:
    pki: Pki
    tokens: TokenStore

    def ca_pem(self) -> bytes:
        return self.pki.ca_pem()

    def handle(self, request: Request, handlers: Handlers) -> Obj:
        data = bodies.decode_object(bodies.read(request, 64 * 1024), bodies.media_type(request))
        secret, node = str(data.get("secret") or ""), str(data.get("nodeName") or "")
        if not secret:
            raise errors.Unauthorized(message="a join token secret is required")
        existing = handlers.store.get(f"/core/nodes/{node}") if node else None
        if existing is not None and self.tokens.validate(secret) and _ready(existing):
            raise errors.Conflict(message=f'node name "{node}" is already in use by a Ready node; '
                                          "choose another name or remove that node first",
                                  kind="nodes", name=node)
        creds = issue_node_credentials(self.pki, self.tokens, secret, node)
        return {"kind": "NodeCredentials", "apiVersion": wellknown.API_VERSION, "nodeName": node,
                "certificate": creds.cert_pem.decode(), "key": creds.key_pem.decode(),
                "ca": creds.ca_pem.decode()}


def _ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False
