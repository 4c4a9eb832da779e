"""Adding a master: a board trades a master join token for the cluster's keys and an etcd membership.

`enable-master --join https://FIRST:6443 --token T` first pins this master's
CA with the token's hash (as a worker's join does, `core.jointoken`), then
posts the token's secret, its node name and its address here. Only a token
made with `pikube token create --master` is accepted: the answer carries the
cluster CA's key (every master issues serving and node certificates), the
service account signing key (tokens signed by one master are checked by all)
and the etcd CA's key (its member certificate must be signed like its
peers'). Before answering, the cluster's etcd gets the board as a *learner*
(a member that receives the data but does not vote), at
`https://ADDRESS:2380`; the joining board starts its member with the
initial-cluster string returned here and promotes itself once etcd says it
has caught up, so a slow SD card never costs the cluster its quorum while it
copies the data.

Refused, with nothing changed: a worker's token; a master on SQLite (it has
no etcd to share); a cluster with an unhealthy voting member (adding one now
could leave it without a quorum); a name or address a started member already
has. A learner left by a join that failed before its member started (etcd
lists it without a name) is replaced rather than refused.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Request

from core import errors, wellknown
from master.api import body as bodies
from master.etcdpki import etcd_pki_paths
from master.pki import Pki
from master.store.base import Store
from master.tokens import TokenStore, validate_node_name

if TYPE_CHECKING:  # imported where it is used: a master on SQLite never loads the etcd client
    from master.store.etcd import EtcdStore

Obj = dict[str, Any]
PEER_PORT = 2380
RETRY_MESSAGE = "not yet, try again in a few seconds"


@dataclass(frozen=True)
class MasterJoinService:
    pki: Pki
    tokens: TokenStore
    store: Store
    data_dir: Path
    api_address: str = ""  # the masters' floating address: a joining master serves and names it too

    def handle(self, request: Request) -> Obj:
        data = bodies.decode_object(bodies.read(request, 64 * 1024), bodies.media_type(request))
        secret, name, address = (str(data.get(k) or "") for k in ("secret", "nodeName", "address"))
        if not secret or not self.tokens.validate(secret, masters=True):
            raise errors.Unauthorized(message="this token may not add masters (wrong, expired, deleted, or made "
                                              "for workers only): make one with `pikube token create --master`")
        validate_node_name(name)
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise errors.Invalid(message=f"address: Invalid value: {address!r}: the joining master's IP address "
                                         "(its etcd member is reached at it)", kind="masters", name=name) from None
        store = self.store
        from master.store.etcd import EtcdStore

        if not isinstance(store, EtcdStore):
            raise errors.Conflict(message="this master keeps the cluster in SQLite, which cannot be shared: only a "
                                          "cluster started with `enable-master --cluster-init` (on etcd) takes more "
                                          "masters", kind="masters", name=name)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        peer_url = f"https://{host}:{PEER_PORT}"
        member = self._add(store, name, peer_url)
        etcd = etcd_pki_paths(self.data_dir)
        members = store.members()
        initial = [f"{m.get('name') or name}={(m.get('peerURLs') or [''])[0]}" for m in members]
        clients = [u for m in members if m.get("name") and not m.get("isLearner") for u in m.get("clientURLs") or []]
        return {"kind": "MasterJoin", "apiVersion": wellknown.API_VERSION, "nodeName": name,
                "memberID": str(member.get("ID") or ""), "initialCluster": ",".join(initial),
                "etcdEndpoints": clients, "apiAddress": self.api_address,
                "ca": self.pki.ca_cert.read_text(), "caKey": self.pki.ca_key.read_text(),
                "serviceAccountKey": (self.pki.ca_cert.parent / "sa.key").read_text(),
                "etcdCa": etcd.ca_cert.read_text(), "etcdCaKey": etcd.ca_key.read_text()}

    def _add(self, store: EtcdStore, name: str, peer_url: str) -> Obj:
        listed = store.members()
        for m in listed:
            if peer_url in (m.get("peerURLs") or []) or (m.get("name") and m.get("name") == name):
                if m.get("name"):
                    raise errors.Conflict(
                        message=f"etcd already has a member {m.get('name')!r} at {', '.join(m.get('peerURLs') or [])}"
                                f": if that board was reset, remove it first (`pikube reset` on the board does, or "
                                f"etcdctl member remove {int(m.get('ID') or 0):x})", kind="masters", name=name)
                store.remove_member(str(m.get("ID")))  # a learner whose board never started it: replaced
        described = store.describe()
        sick = [m["name"] for m in described.get("members") or [] if m.get("name") and not m.get("healthy")
                and not m.get("learner")]
        if sick or described.get("error"):
            raise errors.ServiceUnavailable(
                message=f"the cluster's etcd members {', '.join(sick) or '(unknown)'} do not answer: a new member now "
                        "could cost the cluster its quorum; bring them back or remove them first")
        try:
            return store.add_learner(peer_url)
        except errors.ApiError as exc:
            if "unhealthy cluster" not in exc.message:
                raise
            # etcd adds a member only when every member has been connected for 5 s (its guard for the quorum):
            # right after a member joined or restarted, the caller asks again (core.jointoken retries this).
            raise errors.ServiceUnavailable(message=f"{RETRY_MESSAGE}: etcd adds a member once every member has "
                                                    "been connected for 5 s, and one joined or restarted a moment "
                                                    "ago") from None
