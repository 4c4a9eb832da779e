"""The little of the Kubernetes API the bootstrap needs: is the master up, is a node Ready, taint it.

Plain `http.client` over TLS built from a kubeconfig (`core.kubeconfig.ssl_context`,
which keeps the client key in memory), so `enable-worker` loads nothing heavy.
Errors are the shared `core.errors` types; a master that does not answer yet
is `Unreachable`, which the waits below simply retry.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any

from core import errors, wellknown
from core.jointoken import split_server
from core.kubeconfig import KubeConfig, auth_headers, ssl_context

Obj = dict[str, Any]
MASTER_ROLE = "node-role.kubernetes.io/master"
BACKEND_LABEL = wellknown.BACKEND_LABEL


class Unreachable(Exception):
    """No answer from the master (yet)."""


def request(cfg: KubeConfig, method: str, path: str, body: Obj | None = None, timeout: float = 5.0,
            content_type: str = "application/json") -> Obj:
    host, port = split_server(cfg.server)
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl_context(cfg))
    headers = {"Accept": "application/json", **auth_headers(cfg)}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"{host}:{port}: {exc}") from exc
    finally:
        conn.close()
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        doc = {}
    if resp.status >= 400:
        raise errors.from_status(doc if isinstance(doc, dict) else {}, resp.status)
    return doc if isinstance(doc, dict) else {}


def healthy(cfg: KubeConfig) -> bool:
    try:
        request(cfg, "GET", "/version", timeout=2.0)
    except (Unreachable, errors.ApiError):
        return False
    return True


def condition(node: Obj, kind: str) -> str:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return "Unknown"


def node_ready(cfg: KubeConfig, name: str) -> bool:
    try:
        node = request(cfg, "GET", f"/api/v1/nodes/{name}", timeout=3.0)
    except (Unreachable, errors.NotFound, errors.ServiceUnavailable):
        return False
    return condition(node, "Ready") == "True"


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.1,
             alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll `check` until it holds (True), `timeout` passes or `alive` says it never will (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline or not alive():
            return False
        time.sleep(interval)


def ensure_taint(cfg: KubeConfig, name: str, key: str, effect: str = "NoSchedule") -> bool:
    """Add `key:effect` to the node's taints unless it is there; True when it was added."""
    node = request(cfg, "GET", f"/api/v1/nodes/{name}")
    taints = list((node.get("spec") or {}).get("taints") or [])
    if any(t.get("key") == key and t.get("effect") == effect for t in taints):
        return False
    taints.append({"key": key, "effect": effect})
    request(cfg, "PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": taints}},
            content_type="application/merge-patch+json")
    return True


def cluster_backend(cfg: KubeConfig) -> str | None:
    """The pod network backend the master board announced (its node label), if it did.

    The master board is found by the role the master gave it (MasterSettings.board_node), not by
    `pikube.io/board-role=master`, which any board could set on itself."""
    nodes = request(cfg, "GET", f"/api/v1/nodes?labelSelector={MASTER_ROLE}")
    for node in nodes.get("items") or []:
        backend = ((node.get("metadata") or {}).get("labels") or {}).get(BACKEND_LABEL)
        if backend:
            return str(backend)
    return None
