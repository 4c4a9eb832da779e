"""The pod sandbox's network step as the kubelet sees it: a `PodNetwork` called once the pause container runs.

`IsolatedNetwork` leaves a pod with the pause container's own namespace (loopback
only, no pod IP). The real pod network, `agent.netsync.podnet.BridgeNetwork`,
lives with the rest of the node's network and fits this Protocol; the agent's
wiring (`agent/main.py`) hands one or the other to the pod syncer, so the kubelet
never imports the network side.
"""

from __future__ import annotations

from typing import Protocol


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
