"""The etcd store's upkeep, done by the leading master: defragmentation, NOSPACE recovery, a node condition.

Compaction (every master, every minute: `Master._compact_loop`) drops old
revisions, but etcd keeps the freed pages in its database file until a member
is defragmented; and a member whose database reaches its quota raises the
NOSPACE alarm, after which etcd refuses every write until someone
defragments and disarms it. On a Pi cluster there is no operator watching
`etcdctl`, so every `MAINTENANCE_SECONDS` the master that runs the
controllers asks the store to do what an operator would
(`EtcdStore.maintain`), and says what it found where people look: a Warning
in the master's log, and on the board of each member in alarm the node
condition `EtcdOutOfSpace` (True while the alarm was up, False once it is
gone; `kubectl describe node` shows it). A member's name is its board's
node name (`enable-master --cluster-init` / `--join` name them so).
"""

from __future__ import annotations

import logging
from typing import Any

from core import errors
from core.kube import timefmt
from master.registry.listing import ListOptions
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

log = logging.getLogger(__name__)
Obj = dict[str, Any]
CONDITION = "EtcdOutOfSpace"
MAINTENANCE_SECONDS = 600.0


def _condition(node: Obj) -> Obj | None:
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == CONDITION), None)


def mark_nodes(handlers: Handlers, node_rt: ResourceType, no_space: list[str]) -> list[str]:
    """Set `EtcdOutOfSpace` True on the nodes named in `no_space`, False on those that had it True and are no
    longer in alarm; the names of the nodes written."""
    written: list[str] = []
    now = timefmt.rfc3339()
    for node in handlers.list(node_rt, "", ListOptions()).get("items") or []:
        name = str(node["metadata"]["name"])
        had = _condition(node)
        if name in no_space:
            cond = {"type": CONDITION, "status": "True", "reason": "NOSPACE", "lastHeartbeatTime": now,
                    "lastTransitionTime": now if not had or had.get("status") != "True" else had["lastTransitionTime"],
                    "message": "this board's etcd member ran out of space (NOSPACE alarm) and refused writes; the "
                               "master defragmented it and disarmed the alarm: if it comes back, the cluster holds "
                               "more than etcd's quota (--quota-backend-bytes) allows"}
        elif had is not None and had.get("status") == "True":
            cond = {"type": CONDITION, "status": "False", "reason": "EtcdHasSpace", "lastHeartbeatTime": now,
                    "lastTransitionTime": now, "message": "this board's etcd member has no NOSPACE alarm"}
        else:
            continue
        try:
            handlers.patch(node_rt, "", name, "strategic", {"status": {"conditions": [cond]}}, subresource="status")
        except errors.NotFound:
            continue
        written.append(name)
    return written


def maintain(store: Any, handlers: Handlers, node_rt: ResourceType) -> Obj:
    """One round: the store's upkeep (`EtcdStore.maintain`), then the node conditions. What was done."""
    done: Obj = store.maintain()
    if done["noSpace"]:
        log.warning("etcd members %s had run out of space (NOSPACE): defragmented and disarmed",
                    ", ".join(done["noSpace"]))
    if done["defragmented"]:
        log.info("etcd members defragmented: %s", ", ".join(done["defragmented"]))
    mark_nodes(handlers, node_rt, list(done["noSpace"]))
    return done
