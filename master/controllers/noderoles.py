"""Node roles: the master, not the boards, gives Nodes their `node-role.kubernetes.io/*` labels.

A node may not set node-role labels on itself (NodeRestriction,
master/registry/admission.py): whoever could would steer workloads meant for
the control plane to itself. So the master board's role comes from the
master's own settings (`MasterSettings.board_node`, written by enable-master),
never from anything the board says: that Node gets `master` and
`control-plane`, as k3s gives its server nodes.

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

from core.wellknown import BOARD_ROLE_LABEL
from master.client import Env, Informer, split_key
from master.controllers.base import Controller

Obj = dict[str, Any]
COMPONENT = "node-roles"
MASTER_ROLES = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
WORKER_ROLES = ("node-role.kubernetes.io/worker",)


def wanted_roles(node: Obj, board_node: str) -> tuple[str, ...]:
    """The node-role labels `node` should carry, from the master's settings and the board's announcement."""
    meta = node.get("metadata") or {}
    if board_node and meta.get("name") == board_node:
        return MASTER_ROLES
    if (meta.get("labels") or {}).get(BOARD_ROLE_LABEL) == "worker":
        return WORKER_ROLES
    return ()


def claims_master(node: Obj, board_node: str) -> bool:
    """True if a board announces itself as the master board but is not the one the master runs on."""
    meta = node.get("metadata") or {}
    return (meta.get("labels") or {}).get(BOARD_ROLE_LABEL) == "master" and meta.get("name") != board_node


class NodeRolesController(Controller):
    name = "noderoles"
    workers = 1

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.board_node = env.settings.board_node
        self.nodes: Informer = env.informers.informer(self.kinds.nodes)
        self.primary = self.nodes
        self._warned: set[str] = set()  # nodes told once that their master claim is ignored
        self._lock = threading.Lock()
        self.nodes.add_handler(self._node_changed)

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
        missing = {k: "" for k in wanted_roles(node, self.board_node) if k not in labels}
        if missing:
            self.client.patch(self.kinds.nodes, "", name, {"metadata": {"labels": missing}})
        if claims_master(node, self.board_node):
            with self._lock:
                first = name not in self._warned
                self._warned.add(name)
            if first:
                self.env.recorder.event(
                    node, "Warning", "RoleNotGranted",
                    f"Node {name} announces {BOARD_ROLE_LABEL}=master but the master runs on "
                    f"{self.board_node or 'no board'}: no node-role label given", COMPONENT)
