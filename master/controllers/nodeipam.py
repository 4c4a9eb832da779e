"""Node IPAM: every node gets its own /24 of the pod network in `spec.podCIDR`.

The agent on a board gives its pods addresses from that range and the other
boards route it to the board (host-gw) or tunnel it (vxlan). Which ranges are
taken is read from the nodes themselves, so a deleted node's range is free
again and nothing extra has to survive a master restart; ranges handed out
but not yet seen in the cache are remembered so two nodes never share one.

The API server refuses a Node whose range overlaps one another node holds
(master/registry/core.py), so two holders can only come from a store written
before that check. Such a clash is reported (a Warning event on each node, once)
and left alone: moving a live board's range would strand its running pods, and
the agents route neither holder (agent/netsync/peers.py) until the admin
deletes or re-creates one of the Nodes.
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
        self._clashes_reported: dict[str, str] = {}  # node name -> the clash its last event described
        self.primary = self.nodes
        self.nodes.add_handler(self._node_changed)

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            assert old is not None
            with self._lock:
                self._handed_out.pop(old["metadata"]["name"], None)
                self._clashes_reported.pop(old["metadata"]["name"], None)
            return
        self.enqueue(new)

    def sync(self, key: str) -> None:
        _, name = split_key(key)
        node = self.nodes.get("", name)
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            with self._lock:
                self._handed_out.pop(name, None)
            if node is not None:
                self._report_clash(node)
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

    def _report_clash(self, node: Obj) -> None:
        """A Warning event, once per clash, if another node holds a range overlapping this node's."""
        name = node["metadata"]["name"]
        mine = _networks(_cidrs(node))
        holders = sorted(str(other["metadata"]["name"]) for other in self.nodes.list()
                         if other["metadata"]["name"] != name and _overlap(mine, _networks(_cidrs(other))))
        clash = ", ".join(holders)
        with self._lock:
            if self._clashes_reported.get(name, "") == clash:
                return
            self._clashes_reported[name] = clash
        if clash:
            self.env.recorder.event(
                node, "Warning", "CIDRNotAvailable",
                f"Node {name}'s podCIDR {node['spec']['podCIDR']} overlaps the range of {clash}: boards do not "
                "route either until one of the Nodes is deleted or re-created", COMPONENT)

    def _allocate(self, name: str) -> str | None:
        held = [c for n in self.nodes.list() if n["metadata"]["name"] != name for c in _cidrs(n)]
        held += [c for other, c in self._handed_out.items() if other != name]
        used = _networks(held)
        for subnet in self.network.subnets(new_prefix=self.prefix_length):
            # Overlap, not equality: a range set by hand may be wider or narrower than ours.
            if not _overlap([subnet], used):
                self._handed_out[name] = str(subnet)
                return str(subnet)
        return None


def _cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    found = [str(spec["podCIDR"])] if spec.get("podCIDR") else []
    return found + [str(c) for c in spec.get("podCIDRs") or [] if c]


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(texts: list[str]) -> list[Network]:
    found = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue  # malformed: validation's business, not a clash
    return found


def _overlap(some: list[Network], others: list[Network]) -> bool:
    return any(a.version == b.version and a.overlaps(b) for a in some for b in others)
