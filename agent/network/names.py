"""The names and numbers pikube owns inside a node's network namespace.

Everything the network code creates is recognisable from here alone: the bridge,
the vxlan device, the host ends of pod veths (derived from the pod id) and the
route protocol numbers that mark routes as ours. `teardown` removes exactly these
and nothing else, and the ensure functions never touch what does not carry them.
"""

from __future__ import annotations

import hashlib
import re
from ipaddress import IPv4Address

BRIDGE = "pikube0"
VXLAN_DEVICE = "pikube.1"
VXLAN_VNI = 1
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50
POD_IFNAME = "eth0"

RTPROT_PEER = 112
"""rtnetlink protocol of the routes to other nodes' podCIDRs (both backends)."""
RTPROT_SERVICE = 113
"""rtnetlink protocol of the route that sends the service range to the bridge."""
OWNED_PROTOCOLS = frozenset({RTPROT_PEER, RTPROT_SERVICE})

HOST_IFNAME_PREFIX = "pk"
_HOST_IFNAME = re.compile(r"^pk[0-9a-f]{12}$")


def host_ifname(pod_id: str) -> str:
    """The host end of a pod's veth: 'pk' + 12 hex digits of the id's hash (14 chars, IFNAMSIZ-safe)."""
    return HOST_IFNAME_PREFIX + hashlib.sha256(pod_id.encode()).hexdigest()[:12]


def is_host_ifname(name: str) -> bool:
    """Whether `name` looks like a pod veth made by `host_ifname`."""
    return bool(_HOST_IFNAME.match(name))


def _mac(first: int, second: int, address: IPv4Address) -> str:
    return ":".join(f"{byte:02x}" for byte in (first, second, *address.packed))


def bridge_mac(gateway: IPv4Address) -> str:
    """A fixed, locally administered MAC for the bridge, so the pods' gateway MAC never changes."""
    return _mac(0x0A, 0x58, gateway)


def vtep_mac(node_ip: IPv4Address) -> str:
    """The vxlan device's MAC, derived from the node address so it survives a re-creation."""
    return _mac(0x0E, 0x58, node_ip)
