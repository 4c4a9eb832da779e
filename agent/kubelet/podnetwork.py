"""The pod sandbox's network step: where the pod network (agent/network) plugs into pod start.

`IsolatedNetwork` leaves a pod with the pause container's own namespace (loopback
only, no pod IP); `BridgeNetwork` plugs a veth from the node's `pikube0` bridge
into it with an address from the node's podCIDR. Routes to other boards and
services are the network issue's (peers, proxy); this is only the per-pod part.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol


class PodNetwork(Protocol):
    def setup(self, pod_uid: str, sandbox_pid: int) -> str:
        """Give the pod (whose pause container has PID `sandbox_pid`) its network; return its IP or ""."""
        ...

    def address(self, pod_uid: str) -> str:
        """The pod's IP if it has one ("" otherwise); cheap, no netlink."""
        ...

    def teardown(self, pod_uid: str) -> None: ...

    def prune(self, live_uids: set[str]) -> None: ...


class IsolatedNetwork:
    """No pod network: each pod keeps the pause container's namespace with only `lo`."""

    def setup(self, pod_uid: str, sandbox_pid: int) -> str:
        return ""

    def address(self, pod_uid: str) -> str:
        return ""

    def teardown(self, pod_uid: str) -> None:
        return None

    def prune(self, live_uids: set[str]) -> None:
        return None


class BridgeNetwork:
    """The node's bridge and a veth per pod, addresses from `pod_cidr` (persisted in `data_dir`)."""

    def __init__(self, data_dir: Path, pod_cidr: str, node_ip: str, backend: str = "host-gw") -> None:
        from ipaddress import IPv4Address, IPv4Network

        from agent import network

        self._net: Any = network
        self.node_ns = network.SELF
        self.pod_cidr = IPv4Network(pod_cidr)
        self.node_ip = IPv4Address(node_ip)
        self.backend = network.Backend.VXLAN if backend == "vxlan" else network.Backend.HOST_GW
        self.ipam = network.Ipam(data_dir / "ipam.json", self.pod_cidr)
        self._lock = threading.Lock()
        self._ready: tuple[Any, int] | None = None

    def _ensure_node(self) -> tuple[Any, int]:
        with self._lock:
            if self._ready is None:
                net = self._net
                net.ensure_forwarding(self.node_ns)
                info = net.ensure_backend(self.node_ns, self.backend, self.node_ip)
                gateway = net.ensure_bridge(self.node_ns, self.pod_cidr, info.mtu)
                self._ready = (gateway, info.mtu)
            return self._ready

    def setup(self, pod_uid: str, sandbox_pid: int) -> str:
        gateway, mtu = self._ensure_node()
        address = self.ipam.allocate(pod_uid)
        self._net.ensure_pod_interface(self.node_ns, self._net.pod_netns(sandbox_pid), pod_uid, address,
                                       gateway.ip, mtu)
        return str(address.ip)

    def address(self, pod_uid: str) -> str:
        found = self.ipam.lookup(pod_uid)
        return str(found.ip) if found is not None else ""

    def teardown(self, pod_uid: str) -> None:
        self._net.remove_pod_interface(self.node_ns, pod_uid)
        self.ipam.release(pod_uid)

    def prune(self, live_uids: set[str]) -> None:
        self._net.prune_pod_interfaces(self.node_ns, live_uids)
        self.ipam.reconcile(live_uids)
