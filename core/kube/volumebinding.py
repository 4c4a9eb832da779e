"""Claims and volumes, as both the volume controller and the scheduler judge them.

Which available PersistentVolume a claim may bind to, as Kubernetes' binder picks: the smallest that fits.

A volume fits a claim when it is Available (no claimRef, or a claimRef naming
this claim ahead of time), is of the claim's class ("" matches only volumes of
no class), offers every access mode the claim asks, is at least as large as the
claim's request, has the claim's volume mode, and matches its label selector.
A volume reserved for the claim by `claimRef` wins over any other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.kube import quantity, scheduling
from core.kube.selectors import LabelSelector

Obj = dict[str, Any]


def request_of(claim: Obj) -> Decimal:
    value = (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "0")
    return quantity.parse_quantity(value)


def capacity_of(pv: Obj) -> Decimal:
    return quantity.parse_quantity(((pv.get("spec") or {}).get("capacity") or {}).get("storage", "0"))


def _reserved_for(pv: Obj, claim: Obj) -> bool:
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    meta = claim["metadata"]
    return bool(ref) and ref.get("name") == meta["name"] and ref.get("namespace") == meta.get("namespace") and \
        ref.get("uid") in (None, "", meta.get("uid"))


def fits(pv: Obj, claim: Obj) -> bool:
    spec, want = pv.get("spec") or {}, claim.get("spec") or {}
    if spec.get("claimRef") and not _reserved_for(pv, claim):
        return False
    if (pv.get("status") or {}).get("phase") not in (None, "Pending", "Available"):
        return False
    if (pv.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (spec.get("storageClassName") or "") != (want.get("storageClassName") or ""):
        return False
    if not set(want.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if (spec.get("volumeMode") or "Filesystem") != (want.get("volumeMode") or "Filesystem"):
        return False
    selector = want.get("selector")
    if selector and not LabelSelector.from_dict(selector).matches((pv.get("metadata") or {}).get("labels") or {}):
        return False
    try:
        return capacity_of(pv) >= request_of(claim)
    except (ValueError, ArithmeticError):
        return False


def best_volume(volumes: list[Obj], claim: Obj) -> Obj | None:
    """The volume the claim binds to: one reserved for it, else the smallest that fits; None when none does."""
    candidates = [pv for pv in volumes if fits(pv, claim)]
    reserved = [pv for pv in candidates if _reserved_for(pv, claim)]
    if reserved:
        return reserved[0]
    if not candidates:
        return None
    return min(candidates, key=lambda pv: (capacity_of(pv), pv["metadata"]["name"]))


HOSTNAME_LABEL = "kubernetes.io/hostname"


def node_terms(pv: Obj) -> list[Obj]:
    return [t for t in ((((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
                        .get("nodeSelectorTerms") or []) if isinstance(t, dict)]


def on_node(pv: Obj, node: Obj) -> bool:
    """Whether the volume can be used on `node` (no node affinity: anywhere)."""
    terms = node_terms(pv)
    return not terms or any(scheduling.term_matches(t, node) for t in terms)


def local_path_node(pv: Obj) -> str | None:
    """The one board a volume is pinned to by a `kubernetes.io/hostname In [board]` affinity, or None."""
    for term in node_terms(pv):
        for expr in term.get("matchExpressions") or []:
            values = expr.get("values") or []
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In" and len(values) == 1:
                return str(expr["values"][0])
    return None


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's volumes name, in order."""
    return [str((v.get("persistentVolumeClaim") or {}).get("claimName") or "")
            for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)]


def unclaimed_class(pv: Obj) -> list[str]:
    """Index of volumes free to bind: their class name ("" for none) while no claim holds them (uid in claimRef)."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    if ref.get("uid") or (pv.get("metadata") or {}).get("deletionTimestamp"):
        return []
    return [str((pv.get("spec") or {}).get("storageClassName") or "")]


def claim_ref_key(pv: Obj) -> list[str]:
    """Index of volumes by the claim their claimRef names: `namespace/name`."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return [f"{ref.get('namespace')}/{ref.get('name')}"] if ref.get("name") else []
