"""`SelfSubjectAccessReview`: "may I?" answered by the same authorizer every request meets (`kubectl auth can-i`).

kubectl resolves the resource through discovery, then POSTs
`/apis/authorization.k8s.io/v1/selfsubjectaccessreviews` with the verb,
resource, subresource, namespace and name it asks about, and prints `yes` or
`no` from `status.allowed`. Nothing is stored. The answer comes from
master/api/auth.py's `authorize`, so it cannot drift from what a real request
would meet: an admin may do everything; a node identity only what its agent
needs (never `create pods/exec`).
"""

from __future__ import annotations

from typing import Any

from core import errors
from master.api.auth import Attributes, authorize
from master.registry.context import ApiContext, Identity

Obj = dict[str, Any]
GROUP, VERSION, PLURAL = "authorization.k8s.io", "v1", "selfsubjectaccessreviews"


def review(ctx: ApiContext, identity: Identity, body: Obj) -> Obj:
    if body.get("kind") not in (None, "SelfSubjectAccessReview"):
        raise errors.BadRequest(message=f'expected a SelfSubjectAccessReview, not a {body.get("kind")}')
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise errors.Invalid(message="SelfSubjectAccessReview.authorization.k8s.io is invalid: spec: Required value")
    allowed, reason = _decide(ctx, identity, spec)
    status: Obj = {"allowed": allowed}
    if allowed and reason:  # kubectl prints a denial's reason after its "no"; Kubernetes' RBAC gives none
        status["reason"] = reason
    return {"kind": "SelfSubjectAccessReview", "apiVersion": f"{GROUP}/{VERSION}",
            "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


def _decide(ctx: ApiContext, identity: Identity, spec: Obj) -> tuple[bool, str]:
    attrs = spec.get("resourceAttributes")
    if not isinstance(attrs, dict):
        # Non-resource URLs (/healthz, /version, ...): an admin may; the rest is not modelled for others.
        return identity.is_admin, "" if identity.is_admin else "pikube grants non-resource URLs to admins only"
    group, plural = str(attrs.get("group") or ""), str(attrs.get("resource") or "")
    rt = next((r for r in ctx.catalog if r.group == group and r.plural == plural), None)
    if rt is None:
        return identity.is_admin, "" if identity.is_admin else f'the server does not serve "{plural}"'
    sub = str(attrs.get("subresource") or "")
    if sub and sub not in rt.subresources:
        return identity.is_admin, "" if identity.is_admin else f'the server does not serve "{plural}/{sub}"'
    try:
        authorize(ctx, identity, Attributes(str(attrs.get("verb") or ""), rt, str(attrs.get("namespace") or ""),
                                            str(attrs.get("name") or ""), sub))
    except errors.Forbidden as exc:
        return False, exc.message
    return True, "the user is an admin (system:masters)" if identity.is_admin else ""
