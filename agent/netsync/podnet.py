"""The pod network's per-pod part: a veth from the node's `pikube0` bridge into each pod, an address from its podCIDR.

It fits the kubelet's `PodNetwork` Protocol (`agent/kubelet/podnetwork.py`)
without importing it, and builds on this board's `NodeNetwork` (`node.py`); the
node-wide part (forwarding, backend, routes to other boards, services) is the
rest of `agent/netsync`. pyroute2 is imported only when the pod network is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from agent.netsync.node import NodeNetwork


class BridgeNetwork:
    """The node's bridge and a veth per pod, addresses from the node's podCIDR (persisted in `data_dir`).

    `on_change` is called after a pod got or lost its address (host ports follow pods).
    """

    def __init__(self, data_dir: Path, pod_cidr: str, node: NodeNetwork,
                 on_change: Callable[[], None] = lambda: None) -> None:
        from agent import network

        self._net: Any = network
        self.node = node
        self.data_dir = data_dir
        self._on_change = on_change
        self._lock = threading.Lock()
        self._cidr = IPv4Network(pod_cidr)
        self._gateway = node.bridge(self._cidr)
        self._ipam = network.Ipam(data_dir / "ipam.json", self._cidr)

    @property
    def pod_cidr(self) -> IPv4Network:
        return self._cidr

    @property
    def gateway(self) -> IPv4Interface:
        """The bridge's address (every pod's gateway)."""
        return self._gateway

    @property
    def ipam(self) -> Any:
        return self._ipam

    def retarget(self, pod_cidr: IPv4Network) -> bool:
        """Use another podCIDR (the Node was deleted and registered again); False if it is the same."""
        with self._lock:
            if pod_cidr == self._cidr:
                return False
            self._gateway = self.node.bridge(pod_cidr)
            self._ipam = self._net.Ipam(self.data_dir / "ipam.json", pod_cidr)  # drops the old allocations
            self._cidr = pod_cidr
            return True

    def repair(self) -> None:
        """Ensure the bridge again (someone may have removed or changed it)."""
        with self._lock:
            self._gateway = self.node.bridge(self._cidr)

    def setup(self, pod_uid: str, sandbox_pid: int) -> str:
        with self._lock:
            gateway, ipam = self._gateway, self._ipam
        address = ipam.allocate(pod_uid)
        self._net.ensure_pod_interface(self.node.netns, self._net.pod_netns(sandbox_pid), pod_uid, address,
                                       gateway.ip, self.node.mtu)
        self._on_change()
        return str(address.ip)

    def address(self, pod_uid: str) -> str:
        found = self._ipam.lookup(pod_uid)
        return str(found.ip) if found is not None else ""

    def teardown(self, pod_uid: str) -> None:
        self._net.remove_pod_interface(self.node.netns, pod_uid)
        if self._ipam.release(pod_uid) is not None:
            self._on_change()

    def prune(self, live_uids: set[str]) -> None:
        self._net.prune_pod_interfaces(self.node.netns, live_uids)
        if self._ipam.reconcile(live_uids):
            self._on_change()
