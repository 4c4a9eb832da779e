"""The agent's service account tokens: asked for bound to the pod, kept, renewed at 80 % of their life, served
from what is held while the master is away, and laid out in the pod's projected volume with the CA and namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.client import ConnectionFailed
from agent.kubelet.envs import ConfigError, Lookup
from agent.kubelet.satoken import TokenSource
from agent.kubelet.volumes import VolumeManager
from core.kube import timefmt

Obj = dict[str, Any]
POD = {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}, "spec": {"serviceAccountName": "robot"}}


class FakeApi:
    def __init__(self, clock: list[float]) -> None:
        self.clock, self.asked, self.down = clock, [], False

    def create_sub(self, res: Any, name: str, sub: str, obj: Obj, namespace: str = "") -> Obj:
        if self.down:
            raise ConnectionFailed("master away")
        self.asked.append((res.plural, namespace, name, sub, obj))
        seconds = obj["spec"]["expirationSeconds"]
        return {"status": {"token": f"token-{len(self.asked)}",
                           "expirationTimestamp": timefmt.rfc3339(self.clock[0] + seconds)}}


def test_a_token_is_bound_to_the_pod_kept_and_renewed_at_80_percent() -> None:
    now = [1_000_000.0]
    api = FakeApi(now)
    tokens = TokenSource(api, lambda: now[0])  # type: ignore[arg-type]
    assert tokens.token(POD, "", 3600) == "token-1"
    plural, ns, name, sub, body = api.asked[0]
    assert (plural, ns, name, sub) == ("serviceaccounts", "shop", "robot", "token")
    assert body["spec"]["boundObjectRef"] == {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "u-1"}
    assert body["spec"]["audiences"] is None and body["spec"]["expirationSeconds"] == 3600
    now[0] += 2879  # just under 80 % of an hour
    assert tokens.token(POD, "", 3600) == "token-1"
    now[0] += 2
    assert tokens.token(POD, "", 3600) == "token-2"
    assert tokens.token(POD, "vault", 3600) == "token-3"  # another audience, another token
    api.down = True
    now[0] += 3000  # due for renewal, master away: the held token still serves while valid
    assert tokens.token(POD, "", 3600) == "token-2"
    now[0] += 1000  # expired, master away: no token
    with pytest.raises(ConfigError, match="failed to fetch token"):
        tokens.token(POD, "", 3600)
    tokens.forget(set())
    api.down = False
    assert tokens.token(POD, "", 3600) == "token-4"


class NoDocker:
    node = "board"
    api = None


def test_the_projected_volume_holds_token_ca_and_namespace(tmp_path: Path) -> None:
    lookup = Lookup(config_map=lambda ns, n: {"ca.crt": "PEM", "other": "x"} if n == "kube-root-ca.crt" else None,
                    secret=lambda ns, n: None, sa_token=lambda pod, aud, secs: f"jwt-for-{aud or 'api'}-{secs}")
    vm = VolumeManager(tmp_path, NoDocker(), lookup)  # type: ignore[arg-type]
    source = {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}
    files = vm._projected(POD, "shop", source)
    assert files == {"token": (b"jwt-for-api-3607", 0o644), "ca.crt": (b"PEM", 0o644), "namespace": (b"shop", 0o644)}
    with pytest.raises(ConfigError, match='configmap "absent" not found'):
        vm._projected(POD, "shop", {"sources": [{"configMap": {"name": "absent"}}]})
    with pytest.raises(ConfigError, match="not allowed"):
        vm._projected(POD, "shop", {"sources": [{"serviceAccountToken": {"path": "../escape"}}]})
