"""The pod network of a node: bridge, pod veths, address allocation and the host-gw / vxlan backends.

All netlink work goes through pyroute2; every function takes the network namespace
it acts in (a name under /run/netns or a path such as /proc/<pid>/ns/net) and is
an idempotent "ensure": calling it again converges instead of failing. The agent's
sequence on one node::

    bridge_ok = ensure_forwarding(node_ns)
    info = ensure_backend(node_ns, Backend.VXLAN, node_ip)   # publish info.vtep_mac
    gateway = ensure_bridge(node_ns, pod_cidr, info.mtu)
    ensure_peers(node_ns, Backend.VXLAN, peers)               # on every Node change
    address = ipam.allocate(pod_id)
    ensure_pod_interface(node_ns, pod_netns(pause_pid), pod_id, address, gateway.ip, info.mtu)
"""

from agent.network.backend import VTEP_MAC_ANNOTATION, Backend, BackendInfo, ensure_backend, ensure_peers
from agent.network.bridge import (
    NetworkSetupError,
    ensure_bridge,
    ensure_forwarding,
    ensure_service_route,
    remove_service_route,
)
from agent.network.dockerfw import ensure_docker_forward, remove_docker_forward
from agent.network.hostgw import ensure_routes
from agent.network.ipam import Ipam, IpamExhausted, gateway_of
from agent.network.localaddr import ensure_local_address, remove_local_address
from agent.network.netns import SELF, Netns, pod_netns
from agent.network.peers import Peer
from agent.network.pod import (
    PodInterface,
    ensure_pod_interface,
    pod_interfaces,
    prune_pod_interfaces,
    remove_pod_interface,
)
from agent.network.routes import RouteError
from agent.network.teardown import teardown
from agent.network.vxlan import VxlanInfo, ensure_vxlan, ensure_vxlan_peers, remove_vxlan

__all__ = [
    "SELF",
    "VTEP_MAC_ANNOTATION",
    "Backend",
    "BackendInfo",
    "Ipam",
    "IpamExhausted",
    "Netns",
    "NetworkSetupError",
    "Peer",
    "PodInterface",
    "RouteError",
    "VxlanInfo",
    "ensure_backend",
    "ensure_bridge",
    "ensure_docker_forward",
    "ensure_forwarding",
    "ensure_local_address",
    "ensure_peers",
    "ensure_pod_interface",
    "ensure_routes",
    "ensure_service_route",
    "ensure_vxlan",
    "ensure_vxlan_peers",
    "gateway_of",
    "pod_interfaces",
    "pod_netns",
    "prune_pod_interfaces",
    "remove_docker_forward",
    "remove_local_address",
    "remove_pod_interface",
    "remove_service_route",
    "remove_vxlan",
    "teardown",
]
