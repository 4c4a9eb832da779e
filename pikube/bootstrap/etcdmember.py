"""The board's etcd member as enable-master and reset see it: healthy yet, who the members are, leaving.

These are etcd's v3 JSON gateway calls (`/health`, `/v3/cluster/member/...`)
over mutual TLS with the masters' client certificate, made with the HTTP
client pikube already uses; the master's own store (`master/store/etcd.py`)
speaks the same gateway for the data. Member ids travel as decimal strings
in the gateway's JSON (uint64) and are kept that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

Obj = dict[str, Any]


class EtcdUnavailable(Exception):
    """The member (or its cluster) did not answer, or answered with an error; the message says which."""


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    learner: bool


@dataclass(frozen=True)
class EtcdClient:
    """One endpoint of the cluster, reached with the etcd CA's client certificate under `pki_dir`."""

    endpoint: str
    pki_dir: Path
    timeout: float = 5.0

    def _tls(self) -> Obj:
        # Given with each request: requests lets $REQUESTS_CA_BUNDLE override a session's `verify`.
        return {"verify": str(self.pki_dir / "ca.crt"),
                "cert": (str(self.pki_dir / "apiserver-etcd-client.crt"),
                         str(self.pki_dir / "apiserver-etcd-client.key"))}

    def _post(self, path: str, body: Obj) -> Obj:
        import requests  # here, not at the top: enable-master imports this module, and a board's first boot
        # pays for every import on its way to Ready

        try:
            resp = requests.post(self.endpoint + path, json=body, timeout=self.timeout, **self._tls())
        except (requests.RequestException, OSError) as exc:
            raise EtcdUnavailable(f"etcd at {self.endpoint} did not answer ({type(exc).__name__})") from exc
        try:
            data: Obj = resp.json()
        except ValueError:
            data = {}
        if resp.status_code != 200:
            raise EtcdUnavailable(f"etcd at {self.endpoint} answered {resp.status_code}: "
                                  f"{data.get('message') or data.get('error') or resp.text[:200]}")
        return data

    def healthy(self) -> bool:
        """True when the member answers /health with a leader in its cluster."""
        import requests

        try:
            resp = requests.get(self.endpoint + "/health", timeout=self.timeout, **self._tls())
            return bool(resp.status_code == 200 and resp.json().get("health") == "true")
        except (requests.RequestException, OSError, ValueError):
            return False

    def members(self) -> list[Member]:
        data = self._post("/v3/cluster/member/list", {})
        return [Member(id=str(m.get("ID", "")), name=str(m.get("name", "")),
                       peer_urls=tuple(m.get("peerURLs") or ()), client_urls=tuple(m.get("clientURLs") or ()),
                       learner=bool(m.get("isLearner", False)))
                for m in data.get("members") or []]

    def remove(self, member_id: str) -> None:
        self._post("/v3/cluster/member/remove", {"ID": member_id})

    def promote(self, member_id: str) -> bool:
        """Make the learner `member_id` a voting member: True when it is one, False while etcd says it has not
        caught up with the leader yet (ask again); EtcdUnavailable for anything else."""
        try:
            self._post("/v3/cluster/member/promote", {"ID": member_id})
        except EtcdUnavailable as exc:
            text = str(exc)
            if "in sync with leader" in text:
                return False
            if "can only promote a learner member" in text:  # it votes already (an earlier promote went through)
                return True
            raise
        return True
