"""Node roles: the master, not the boards, gives Nodes their `node-role.kubernetes.io/*` labels.

A node may not set node-role labels on itself (NodeRestriction,
master/registry/admission.py): whoever could would steer workloads meant for
the control plane to itself. So the master boards' roles come from the
masters themselves, never from anything a board says: each master names its
board in its own settings (`MasterSettings.board_node`, written by
enable-master) and on the Lease it renews in kube-system (label
`pikube.io/apiserver`, annotation `pikube.io/board-node`; only masters write
there), and those Nodes get `master` and `control-plane`, as k3s gives its
server nodes. With several masters the one running this controller so learns
every master board.

A joined board announces `pikube.io/board-role=worker` (enable-worker's unit)
and gets `node-role.kubernetes.io/worker`, so `kubectl get nodes` shows ROLES as
before; that role grants nothing a node could not already claim with a label of
its own. A board announcing `master` that is not `board_node` gets no role and
one Warning event. Labels are only added, never removed: the admin may change
roles by hand.
"""

from __future__ import annotations

import threading
from typing import Any

from core.wellknown import APISERVER_LEASE_LABEL, BOARD_NODE_ANNOTATION, BOARD_ROLE_LABEL
from master.client import Env, Informer, split_key
from master.controllers.base import Controller

Obj = dict[str, Any]
COMPONENT = "node-roles"
MASTER_ROLES = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
WORKER_ROLES = ("node-role.kubernetes.io/worker",)


def master_boards(leases: list[Obj], board_node: str) -> set[str]:
    """The Nodes masters run on: this master's own, and those named on the masters' Leases."""
    named = {str(((lease.get("metadata") or {}).get("annotations") or {}).get(BOARD_NODE_ANNOTATION) or "")
             for lease in leases
             if ((lease.get("metadata") or {}).get("labels") or {}).get(APISERVER_LEASE_LABEL) == "true"
             and (lease.get("metadata") or {}).get("namespace") == "kube-system"}
    return {n for n in (*named, board_node) if n}


def wanted_roles(node: Obj, masters: str | set[str]) -> tuple[str, ...]:
    """The node-role labels `node` should carry, from the master boards and the board's announcement."""
    meta = node.get("metadata") or {}
    boards = {masters} if isinstance(masters, str) else masters
    if meta.get("name") in boards:
        return MASTER_ROLES
    if (meta.get("labels") or {}).get(BOARD_ROLE_LABEL) == "worker":
        return WORKER_ROLES
    return ()


def claims_master(node: Obj, masters: str | set[str]) -> bool:
    """True if a board announces itself as a master board but no master runs on it."""
    meta = node.get("metadata") or {}
    boards = {masters} if isinstance(masters, str) else masters
    return (meta.get("labels") or {}).get(BOARD_ROLE_LABEL) == "master" and meta.get("name") not in boards


class NodeRolesController(Controller):
    name = "noderoles"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.board_node = env.settings.board_node
        self.nodes: Informer = env.informers.informer(self.kinds.nodes)
        self.leases: Informer = env.informers.informer(self.kinds.leases)
        self.primary = self.nodes
        self._warned: set[str] = set()  # nodes told once that their master claim is ignored
        self._lock = threading.Lock()
        self.nodes.add_handler(self._node_changed)
        self.leases.add_handler(self._lease_changed)

    def _lease_changed(self, old: Obj | None, new: Obj | None) -> None:
        for lease in (old, new):
            named = ((lease or {}).get("metadata") or {}).get("annotations") or {}
            if named.get(BOARD_NODE_ANNOTATION):
                self.queue.add(str(named[BOARD_NODE_ANNOTATION]))

    def _masters(self) -> set[str]:
        return master_boards(self.leases.list(), self.board_node)

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            with self._lock:
                self._warned.discard(str(old["metadata"]["name"]))
            return
        self.enqueue(new)

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        node = self.nodes.get("", name)
        if node is None:
            return
        labels = (node.get("metadata") or {}).get("labels") or {}
        masters = self._masters()
        missing = {k: "" for k in wanted_roles(node, masters) if k not in labels}
        if missing:
            self.client.patch(self.kinds.nodes, "", name, {"metadata": {"labels": missing}})
        if claims_master(node, masters):
            with self._lock:
                first = name not in self._warned
                self._warned.add(name)
            if first:
                self.env.recorder.event(
                    node, "Warning", "RoleNotGranted",
                    f"Node {name} announces {BOARD_ROLE_LABEL}=master but the masters run on "
                    f"{', '.join(sorted(masters)) or 'no board'}: no node-role label given", COMPONENT)
