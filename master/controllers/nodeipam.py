"""Node IPAM: every node gets its own /24 of the pod network in `spec.podCIDR`.

The agent on a board gives its pods addresses from that range and the other
boards route it to the board (host-gw) or tunnel it (vxlan). Which ranges are
taken is read from the nodes themselves, so a deleted node's range is free
again and nothing extra has to survive a master restart; ranges handed out
but not yet seen in the cache are remembered so two nodes never share one.

It also gives a board its `node-role.kubernetes.io/*` labels from the role its
agent announces (`pikube.io/board-role`): a node may not set those itself
(NodeRestriction, master/registry/admission.py), the master may.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from core import errors
from core.wellknown import BOARD_ROLE_LABEL
from master.client import Env, Informer, split_key
from master.controllers.base import Controller

Obj = dict[str, Any]
COMPONENT = "cidrAllocator"
# The node-role labels each announced board role gets (what `kubectl get nodes` shows as ROLES).
ROLE_LABELS = {
    "master": ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"),
    "worker": ("node-role.kubernetes.io/worker",),
}


def missing_role_labels(node: Obj) -> dict[str, str]:
    labels = (node.get("metadata") or {}).get("labels") or {}
    wanted = ROLE_LABELS.get(str(labels.get(BOARD_ROLE_LABEL) or ""), ())
    return {k: "" for k in wanted if k not in labels}


class NodeIpamController(Controller):
    name = "nodeipam"
    workers = 1

    def __init__(self, env: Env, prefix_length: int = 24) -> None:
        super().__init__(env)
        self.network = ipaddress.ip_network(env.settings.pod_cidr)
        self.prefix_length = max(prefix_length, self.network.prefixlen)
        self.nodes: Informer = env.informers.informer(self.kinds.nodes)
        self._lock = threading.Lock()
        self._handed_out: dict[str, str] = {}  # node name -> CIDR not yet seen in the cache
        self.primary = self.nodes
        self.nodes.add_handler(self._node_changed)

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            with self._lock:
                self._handed_out.pop(old["metadata"]["name"], None)
            return
        self.enqueue(new)

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        node = self.nodes.get("", name)
        if node is not None and (roles := missing_role_labels(node)):
            self.client.patch(self.kinds.nodes, "", name, {"metadata": {"labels": roles}})
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            with self._lock:
                self._handed_out.pop(name, None)
            return
        with self._lock:
            cidr = self._handed_out.get(name) or self._allocate(name)
        if cidr is None:
            self.env.recorder.event(node, "Normal", "CIDRNotAvailable",
                                    f"Node {name} status is now: CIDRNotAvailable", COMPONENT)
            raise errors.ServiceUnavailable(message=f"no free /{self.prefix_length} left in {self.network}")
        try:
            self.client.patch(self.kinds.nodes, "", name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})
        except errors.Invalid:
            # Another node took that range meanwhile (one the cache has not shown yet, e.g. created
            # with it by the admin): the API server refused the duplicate; pick again on the retry.
            with self._lock:
                self._handed_out.pop(name, None)
            raise

    def _allocate(self, name: str) -> str | None:
        held = [c for n in self.nodes.list() if n["metadata"]["name"] != name for c in _cidrs(n)]
        held += [c for other, c in self._handed_out.items() if other != name]
        used = []
        for text in held:
            try:
                used.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                continue
        for subnet in self.network.subnets(new_prefix=self.prefix_length):
            # Overlap, not equality: a range set by hand may be wider or narrower than ours.
            if not any(subnet.version == u.version and subnet.overlaps(u) for u in used):
                self._handed_out[name] = str(subnet)
                return str(subnet)
        return None


def _cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    found = [str(spec["podCIDR"])] if spec.get("podCIDR") else []
    return found + [str(c) for c in spec.get("podCIDRs") or [] if c]
