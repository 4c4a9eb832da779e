"""The host-gw backend: plain routes to the other nodes' podCIDRs, for nodes on one switch.

No encapsulation, full MTU, the fastest path: each peer's podCIDR via its node
address. Only routes marked with `names.RTPROT_PEER` are considered ours, so a
route someone else added to the same destination is never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.network.names import RTPROT_PEER
from agent.network.netns import Netns, iproute
from agent.network.peers import Peer, hostgw_routes, plan_routes, usable_peers
from agent.network.routes import apply_route_plan, current_routes, local_addresses


def ensure_routes(netns: Netns | str, peers: Iterable[Peer]) -> list[Peer]:
    """Routes exactly for `peers` (missing ones added, stale owned ones removed); returns the peers routed.

    This node itself (a peer whose address is local) is skipped. A peer whose
    address is not on a directly connected network cannot be routed by host-gw:
    the others are still written and a RouteError names the failures.
    """
    with iproute(netns) as ipr:
        routed = usable_peers(peers, local_addresses(ipr))
        plan = plan_routes(current_routes(ipr, RTPROT_PEER), hostgw_routes(routed))
        apply_route_plan(ipr, plan, RTPROT_PEER)
    return routed
