"""Which labels a node may set on its own Node (Kubernetes' NodeRestriction admission).

Shared by the master, which refuses the others, and the agent, which never sends them.
"""

from __future__ import annotations

# Labels the kubelet sets itself (k8s.io/kubelet/apis well_known_labels.go).
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
})
KUBELET_PREFIXES = ("kubelet.kubernetes.io", "node.kubernetes.io")
# Always refused to a node, though in the domains above: they place workloads and roles.
RESTRICTED_PREFIXES = ("node-role.kubernetes.io", "node-restriction.kubernetes.io")
ROLE_PREFIX = "node-role.kubernetes.io/"


def _domain(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def _in(domain: str, parent: str) -> bool:
    return domain == parent or domain.endswith("." + parent)


def node_may_set(key: str) -> bool:
    """True if a node may add, change or remove label `key` on its own Node."""
    domain = _domain(key)
    if any(_in(domain, p) for p in RESTRICTED_PREFIXES):
        return False
    if not (_in(domain, "kubernetes.io") or _in(domain, "k8s.io")):
        return True
    return key in KUBELET_LABELS or any(_in(domain, p) for p in KUBELET_PREFIXES)
