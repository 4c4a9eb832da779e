"""Admission after authorisation: what an authorised requester may still not write.

RBAC's escalation prevention, for everyone but admins and the master itself: a
Role or ClusterRole may hold only permissions its writer holds (in the role's
namespace), unless the writer may `escalate` it; a binding may grant only a role
whose permissions its writer holds, unless the writer may `bind` that role.

Kubernetes' NodeRestriction plugin, for node identities (`system:node:NAME` in
`system:nodes`). Authorisation already confines a node to writing its own Node;
here, with the old and new objects both known, a node may not:

- add, change or remove labels in the node-role / node-restriction domains, nor other
  `kubernetes.io` / `k8s.io` labels except the kubelet's own (core.kube.nodelabels);
- set or change `spec.podCIDR` / `spec.podCIDRs` (only the master's IPAM assigns them);
- change `spec.taints` once the Node exists (it may register with taints).

A refusal is 403 Forbidden and nothing is stored. Transport-free: the verbs call it
with the requester the API layer authenticated (None for the master's own writes).
"""

from __future__ import annotations

from typing import Any

from core import errors
from core.kube.nodelabels import node_may_set
from master.registry.context import Identity
from master.registry.rbacindex import RbacIndex, Request, compact, missing_rules
from master.registry.resource import ResourceType

Obj = dict[str, Any]


RBAC = "rbac.authorization.k8s.io"


def admit_rbac(rt: ResourceType, obj: Obj, requester: Identity | None, rbac: RbacIndex) -> None:
    """Escalation prevention for the four RBAC kinds (create and update alike)."""
    if requester is None or requester.is_admin or rt.group != RBAC:
        return
    meta = obj.get("metadata") or {}
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    if rt.kind in ("Role", "ClusterRole"):
        if rbac.allows(requester.user, requester.groups, Request("escalate", RBAC, rt.plural, namespace=ns, name=name)):
            return
        wanted = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
    elif rt.kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        role_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        role_ns = "" if ref.get("kind") == "ClusterRole" else ns
        if rbac.allows(requester.user, requester.groups,
                       Request("bind", RBAC, role_plural, namespace=ns, name=str(ref.get("name") or ""))):
            return
        wanted = rbac.role_rules(str(ref.get("kind") or ""), role_ns, str(ref.get("name") or "")) or []
    else:
        return
    missing = missing_rules(rbac.rules_for(requester.user, requester.groups, ns), wanted)
    if missing:
        groups = "[" + " ".join(f'"{g}"' for g in requester.groups) + "]"
        raise errors.Forbidden(
            message=f'{rt.plural}.{RBAC} "{name}" is forbidden: user "{requester.user}" (groups={groups}) is '
                    "attempting to grant RBAC permissions not currently held:\n"
                    + "\n".join(compact(r) for r in missing),
            kind=rt.plural, name=name, group=RBAC)


def admit_create(rt: ResourceType, obj: Obj, requester: Identity | None) -> None:
    node = _node_of(requester)
    if node is None or rt.kind != "Node":
        return
    labels = _labels(obj)
    bad = sorted(k for k in labels if not node_may_set(k))
    if bad:
        raise _forbidden(node, obj, f"is not allowed to set the following labels: {', '.join(bad)}")
    spec = obj.get("spec") or {}
    if isinstance(spec, dict) and (spec.get("podCIDR") or spec.get("podCIDRs")):
        raise _forbidden(node, obj, "is not allowed to set spec.podCIDR: the master assigns it")


def admit_update(rt: ResourceType, new: Obj, old: Obj, requester: Identity | None) -> None:
    node = _node_of(requester)
    if node is None or rt.kind != "Node":
        return
    new_labels, old_labels = _labels(new), _labels(old)
    changed = {k for k in set(new_labels) | set(old_labels) if new_labels.get(k) != old_labels.get(k)}
    bad = sorted(k for k in changed if not node_may_set(k))
    if bad:
        raise _forbidden(node, new, f"is not allowed to modify labels: {', '.join(bad)}")
    new_spec, old_spec = _spec(new), _spec(old)
    for fld in ("podCIDR", "podCIDRs"):
        if (new_spec.get(fld) or None) != (old_spec.get(fld) or None):
            raise _forbidden(node, new, f"is not allowed to modify spec.{fld}: the master assigns it")
    if (new_spec.get("taints") or []) != (old_spec.get("taints") or []):
        raise _forbidden(node, new, "is not allowed to modify taints")


def _node_of(requester: Identity | None) -> str | None:
    if requester is None or requester.is_admin:
        return None
    return requester.node_name


def _labels(obj: Obj) -> dict[str, Any]:
    labels = (obj.get("metadata") or {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _forbidden(node: str, obj: Obj, what: str) -> errors.Forbidden:
    name = str((obj.get("metadata") or {}).get("name") or node)
    return errors.Forbidden(message=f'nodes "{name}" is forbidden: node "{node}" {what}',
                            kind="nodes", name=name)
