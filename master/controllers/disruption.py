"""Zone disruption: when many nodes of a zone go silent together, the fault is more likely ours than theirs.

Kubernetes' node lifecycle controller groups nodes by zone (the
`topology.kubernetes.io/zone` label, "" when absent) and judges each zone
(ComputeZoneState):

- **FullDisruption**: every node of the zone is unhealthy (Ready not True);
- **PartialDisruption**: more than 2 nodes are unhealthy and they are at least
  `unhealthy_zone_threshold` (0.55) of the zone;
- **Normal** otherwise.

What that means for eviction (`eviction_mode`): in a fully disrupted zone
nothing is evicted (pikube is usually one zone: every board silent at once is a
switch or the master's own network, not every board dying); in a partially
disrupted zone of a cluster of at most `large_cluster_size_threshold` (50)
nodes nothing is evicted either, and in a larger cluster nodes are tainted for
eviction at the secondary rate; in a Normal zone eviction goes on as usual.

Pure functions only: the controller (`nodelifecycle.py`) decides which nodes are
unhealthy and acts on the answer.
"""

from __future__ import annotations

from typing import Any, Final, Literal

ZONE_LABEL = "topology.kubernetes.io/zone"

NORMAL: Final = "Normal"
PARTIAL: Final = "PartialDisruption"
FULL: Final = "FullDisruption"
ZoneState = Literal["Normal", "PartialDisruption", "FullDisruption"]

# Eviction modes: "normal" (as if nothing were wrong), "secondary" (rate-limited), "stopped" (none at all).
EvictionMode = Literal["normal", "secondary", "stopped"]


def zone_of(node: dict[str, Any]) -> str:
    """The node's zone: its `topology.kubernetes.io/zone` label, "" when absent."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    return str(labels.get(ZONE_LABEL) or "")


def zone_state(healthy: int, unhealthy: int, unhealthy_zone_threshold: float = 0.55) -> ZoneState:
    """Kubernetes' ComputeZoneState over the counts of a zone's healthy and unhealthy nodes."""
    if healthy <= 0 and unhealthy > 0:
        return FULL
    if unhealthy > 2 and unhealthy / (healthy + unhealthy) >= unhealthy_zone_threshold:
        return PARTIAL
    return NORMAL


def eviction_mode(state: ZoneState, cluster_size: int, large_cluster_size_threshold: int = 50) -> EvictionMode:
    """How a zone in `state` evicts, in a cluster of `cluster_size` nodes."""
    if state == FULL:
        return "stopped"
    if state == PARTIAL:
        return "secondary" if cluster_size > large_cluster_size_threshold else "stopped"
    return "normal"
