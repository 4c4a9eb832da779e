"""The board's part in the cluster, for `pikube info`: role, services, and what the master says.

A master asks with the admin kubeconfig; a worker with its own node
credentials (a node may read Nodes). A master that does not answer is
reported, not an error: `info` is what you run when something is wrong.
"""

from __future__ import annotations

from core import errors
from core.kubeconfig import read_kubeconfig
from pikube.bootstrap import api
from pikube.bootstrap.init import Init
from pikube.bootstrap.layout import AGENT_UNIT, MASTER_UNIT, Layout
from pikube.bootstrap.record import NodeRecord, Role


def role(rec: NodeRecord | None) -> str:
    if rec is None:
        return "none (run `sudo enable-master`, or `sudo enable-worker MASTER --token T`)"
    extra = ", tainted" if rec.taint_master else ""
    return (f"{rec.role.value} (node {rec.node_name}, master {rec.server}, backend {rec.backend}, "
            f"init {rec.init.value}{extra})")


def services(rec: NodeRecord | None, init: Init) -> str:
    units = (MASTER_UNIT, AGENT_UNIT) if rec is None else rec.units
    parts = []
    for unit in units:
        state = "running" if init.active(unit) else (
            "installed, not running" if init.installed_text(unit) is not None else "not installed")
        parts.append(f"{unit} {state}")
    return ", ".join(parts)


def cluster(layout: Layout, rec: NodeRecord | None) -> str:
    if rec is None:
        return "not part of a cluster"
    path = layout.admin_kubeconfig if rec.role is Role.MASTER else layout.node_kubeconfig
    try:
        cfg = read_kubeconfig(path)
    except (OSError, ValueError) as exc:
        return f"no credentials to ask the master with ({path}: {exc})"
    try:
        nodes = api.request(cfg, "GET", "/api/v1/nodes", timeout=3.0).get("items") or []
    except api.Unreachable as exc:
        return f"the master at {rec.server} does not answer ({exc})"
    except errors.ApiError as exc:
        return f"the master at {rec.server} refused: {exc.message}"
    ready = [n for n in nodes if api.condition(n, "Ready") == "True"]
    me = next((n for n in nodes if (n.get("metadata") or {}).get("name") == rec.node_name), None)
    mine = "not registered" if me is None else ("Ready" if me in ready else "NotReady")
    return f"{len(nodes)} nodes, {len(ready)} Ready; this node ({rec.node_name}) {mine}"


def datastore(layout: Layout, rec: NodeRecord | None) -> str | None:
    """The master's store as `pikube info` shows it (None on a board that is not a master)."""
    if rec is None or rec.role is not Role.MASTER:
        return None
    try:
        cfg = read_kubeconfig(layout.admin_kubeconfig)
        doc = api.request(cfg, "GET", "/pikube/v1/datastore", timeout=5.0)
    except (OSError, ValueError) as exc:
        return f"unknown (no admin credentials: {exc})"
    except api.Unreachable as exc:
        return f"unknown (the master does not answer: {exc})"
    except errors.ApiError as exc:
        return f"unknown ({exc.message})"
    return describe_store(doc)


def describe_store(doc: dict[str, object]) -> str:
    """One line for a store's health, from `GET /pikube/v1/datastore`."""
    if doc.get("backend") == "sqlite":
        return f"SQLite ({doc.get('path')})"
    listed = doc.get("members")
    members = [m for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []
    if doc.get("error"):
        return f"etcd: cannot list its members ({doc.get('error')})"
    healthy = [m for m in members if m.get("healthy")]
    down = [str(m.get("name") or m.get("id")) for m in members if not m.get("healthy")]
    line = f"etcd, {len(healthy)} of {len(members)} members answering"
    line += f", leader {doc.get('leader')}" if doc.get("leader") else ", NO LEADER"
    if down:
        line += f"; not answering: {', '.join(down)}"
    if len(healthy) * 2 <= len(members) or doc.get("readOnly"):
        line += " — NO QUORUM: the API is read-only"
    return line
