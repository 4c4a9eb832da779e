"""Node IPAM: every node gets its own /24 of the pod network in `spec.podCIDR`.

The agent on a board gives its pods addresses from that range and the other
boards route it to the board (host-gw) or tunnel it (vxlan). Which ranges are
taken is read from the nodes themselves, so a deleted node's range is free
again and nothing extra has to survive a master restart; ranges handed out
but not yet seen in the cache are remembered so two nodes never share one.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from core import errors
from master.client import Env, Informer, split_key
from master.controllers.base import Controller

Obj = dict[str, Any]
COMPONENT = "cidrAllocator"


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
        self.client.patch(self.kinds.nodes, "", name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}})

    def _allocate(self, name: str) -> str | None:
        used = {str((n.get("spec") or {}).get("podCIDR")) for n in self.nodes.list()}
        used |= set(self._handed_out.values())
        for subnet in self.network.subnets(new_prefix=self.prefix_length):
            text = str(subnet)
            if text not in used:
                self._handed_out[name] = text
                return text
        return None
