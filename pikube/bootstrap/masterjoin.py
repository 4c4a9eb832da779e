"""`enable-master --join`: this board becomes one more master of a cluster kept in etcd.

The steps, in order, each undone when a later one fails (nothing half-joined):

1. pin the first master's CA with the token's hash, then trade the token's
   secret for the cluster's keys and an etcd learner membership
   (`master/api/masterjoin.py` says what is sent and why);
2. write the keys where a master keeps them (`pki/ca.*`, `pki/sa.key`,
   `pki/etcd/ca.*`); a board that holds another cluster's CA is refused;
3. start `pikube-etcd.service` with the cluster's members as its initial
   cluster (`--initial-cluster-state existing`): it copies the data as a
   learner;
4. promote it once etcd says it has caught up with the leader, asking the
   members the first master named (a learner does not vote, so the cluster
   keeps its quorum however slow this board's card is).

If anything fails after step 1, the learner is removed from the cluster
again (asked of the members it was added to), and the caller undoes files
and services.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import errors
from core.jointoken import JoinError, fetch_and_pin_ca, parse, request_master_join
from pikube.bootstrap.common import write_private
from pikube.bootstrap.errors import BootstrapError, JoinRefused, NotReady
from pikube.bootstrap.etcdmember import EtcdClient, EtcdUnavailable
from pikube.bootstrap.joinerrors import explain
from pikube.bootstrap.layout import Layout

Report = Callable[[str], None]
RETRY_SECONDS = 30.0
NOT_YET = "not yet, try again"  # master/api/masterjoin.py's RETRY_MESSAGE begins so


@dataclass(frozen=True)
class Joined:
    """What the board's etcd and master units need: the members at first start, the cluster's client URLs."""

    initial_cluster: str
    endpoints: tuple[str, ...]
    member_id: str
    api_address: str = ""  # the cluster's floating address, if its masters have one


@dataclass(frozen=True)
class JoinRequest:
    server: str
    token: str
    node_name: str
    address: str


def fetch_keys(req: JoinRequest, layout: Layout, made_files: list[Path]) -> Joined:
    """Steps 1-2: the keys written under the master's data dir, the learner added; BootstrapError otherwise."""
    try:
        token = parse(req.token)
    except ValueError as exc:
        raise BootstrapError(f"{exc}") from None
    try:
        ca_pem = fetch_and_pin_ca(req.server, token.ca_hash)
        if layout.master_ca.exists() and layout.master_ca.read_bytes().strip() != ca_pem.strip():
            raise BootstrapError(f"this board already holds another cluster's CA ({layout.master_ca}); run "
                                 "`sudo pikube reset` on it first.")
        doc = _ask(req, ca_pem, token.secret)
    except (JoinError, errors.ApiError) as exc:
        raise _explain(exc, req.server) from None
    pki = layout.master_data / "pki"
    files = ((pki / "ca.crt", doc["ca"]), (pki / "ca.key", doc["caKey"]), (pki / "sa.key", doc["serviceAccountKey"]),
             (pki / "etcd" / "ca.crt", doc["etcdCa"]), (pki / "etcd" / "ca.key", doc["etcdCaKey"]))
    for path, text in files:
        if write_private(path, str(text).encode()):
            made_files.append(path)
    from master.etcdpki import ensure_etcd_pki  # the client certificate now: a failed join must be able to leave

    ensure_etcd_pki(layout.master_data, req.node_name, [req.address])
    endpoints = tuple(str(u) for u in doc.get("etcdEndpoints") or ())
    return Joined(initial_cluster=str(doc["initialCluster"]), endpoints=endpoints, member_id=str(doc["memberID"]),
                  api_address=str(doc.get("apiAddress") or ""))


def _ask(req: JoinRequest, ca_pem: bytes, secret: str) -> dict[str, Any]:
    """The master join, asked again while the master says "not yet" (etcd just added or restarted a member)."""
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            return request_master_join(req.server, ca_pem, secret, req.node_name, req.address)
        except errors.ServiceUnavailable as exc:
            if NOT_YET not in exc.message or time.monotonic() >= deadline:
                raise
        time.sleep(1.0)


def _explain(exc: Exception, server: str) -> JoinRefused:
    if isinstance(exc, errors.Unauthorized):
        return JoinRefused(f"the master at {server} refused the token for adding a master (wrong, expired, deleted, "
                           "or a worker's token): make one on a master with `sudo pikube token create --master`.")
    if isinstance(exc, errors.ApiError):
        return JoinRefused(f"the master at {server} refused to add this master: {exc.message.rstrip('.')}.")
    return explain(exc, server, "")


def promote(joined: Joined, pki_dir: Path, local: str, timeout: float) -> None:
    """Step 4: ask until etcd makes this board's learner a voting member; NotReady when it never does."""
    clients = [EtcdClient(e, pki_dir, timeout=3.0) for e in (*joined.endpoints, local)]
    deadline = time.monotonic() + timeout
    last = "no member answered"
    while time.monotonic() < deadline:
        for client in clients:
            try:
                if client.promote(joined.member_id):
                    return
                last = "it has not caught up with the leader yet"
                break
            except EtcdUnavailable as exc:
                last = str(exc)
        time.sleep(0.5)
    raise NotReady(f"this board's etcd member was not promoted to a voting member within {timeout:.0f} s "
                   f"({last}); see its log")


def leave(joined: Joined, pki_dir: Path, report: Report) -> None:
    """Take the learner out of the cluster again after a failed join (best effort, said when it fails)."""
    for endpoint in joined.endpoints:
        with contextlib.suppress(EtcdUnavailable):
            EtcdClient(endpoint, pki_dir).remove(joined.member_id)
            report(f"etcd member {joined.member_id} removed from the cluster again")
            return
    report(f"could not remove this board's etcd member from the cluster: on a master run "
           f"`etcdctl member remove {int(joined.member_id):x}`")
