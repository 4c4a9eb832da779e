"""Access reviews: "may I?" (and "may they?") answered by the same authorizer every request meets.

* `SelfSubjectAccessReview` (`kubectl auth can-i VERB RESOURCE`), for resources
  and non-resource URLs;
* `SelfSubjectRulesReview` (`kubectl auth can-i --list`): the RBAC rules that
  apply to the caller in a namespace (a node's extra node-authorizer rights are
  not rules, so its answer says `incomplete`);
* `SelfSubjectReview` (`authentication.k8s.io/v1`, `kubectl auth whoami`): who
  the caller is, as authentication (and impersonation) established it;
* `SubjectAccessReview` and the namespaced `LocalSubjectAccessReview`, for
  whoever RBAC lets create them (the admin; `admin` in its namespace for the
  local one): the same question about any user and groups.


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
from master.api.auth import Attributes, allowed, authorize
from master.registry.context import ApiContext, Identity
from master.registry.rbacindex import Request

Obj = dict[str, Any]
GROUP, VERSION, PLURAL = "authorization.k8s.io", "v1", "selfsubjectaccessreviews"
RULES_PLURAL, SUBJECT_PLURAL, LOCAL_PLURAL = "selfsubjectrulesreviews", "subjectaccessreviews", \
    "localsubjectaccessreviews"


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
        url = spec.get("nonResourceAttributes")
        if not isinstance(url, dict):
            raise errors.Invalid(message="resourceAttributes or nonResourceAttributes is required")
        ok = allowed(ctx, identity, Request(str(url.get("verb") or ""), path=str(url.get("path") or "")))
        return ok, ""
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


def _typed(kind: str, spec: Obj, status: Obj, namespace: str = "") -> Obj:
    meta: Obj = {"creationTimestamp": None}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", "metadata": meta, "spec": spec, "status": status}


def _spec(body: Obj, kind: str) -> Obj:
    if body.get("kind") not in (None, kind):
        raise errors.BadRequest(message=f'expected a {kind}, not a {body.get("kind")}')
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise errors.Invalid(message=f"{kind}.authorization.k8s.io is invalid: spec: Required value")
    return spec


def rules_review(ctx: ApiContext, identity: Identity, body: Obj) -> Obj:
    """The rules that apply to the caller in `spec.namespace`, as `kubectl auth can-i --list` prints them."""
    spec = _spec(body, "SelfSubjectRulesReview")
    namespace = str(spec.get("namespace") or "")
    resource_rules: list[Obj] = []
    url_rules: list[Obj] = []
    for rule in ctx.rbac.rules_for(identity.user, identity.groups, namespace):
        if rule.get("nonResourceURLs"):
            entry = {"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule["nonResourceURLs"])}
            if entry not in url_rules:
                url_rules.append(entry)
            continue
        entry = {"verbs": list(rule.get("verbs") or []), "apiGroups": list(rule.get("apiGroups") or []),
                 "resources": list(rule.get("resources") or [])}
        if rule.get("resourceNames"):
            entry["resourceNames"] = list(rule["resourceNames"])
        if entry not in resource_rules:
            resource_rules.append(entry)
    status: Obj = {"resourceRules": resource_rules, "nonResourceRules": url_rules,
                   "incomplete": identity.node_name is not None}
    if identity.node_name is not None:
        status["evaluationError"] = "the node authorizer's rights of a node are not listed as rules"
    return _typed("SelfSubjectRulesReview", spec, status)


def subject_review(ctx: ApiContext, identity: Identity, body: Obj, namespace: str = "") -> Obj:
    """`SubjectAccessReview` (cluster-wide) or `LocalSubjectAccessReview` (`namespace` set): about `spec.user`."""
    kind = "LocalSubjectAccessReview" if namespace else "SubjectAccessReview"
    plural = LOCAL_PLURAL if namespace else SUBJECT_PLURAL
    if not allowed(ctx, identity, Request("create", GROUP, plural, namespace=namespace)):
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise errors.Forbidden(message=f'{plural}.{GROUP} is forbidden: User "{identity.user}" cannot create '
                                       f'resource "{plural}" in API group "{GROUP}" {where}',
                               kind=plural, group=GROUP)
    spec = _spec(body, kind)
    user, groups = str(spec.get("user") or ""), spec.get("groups") or []
    if not user and not groups:
        raise errors.Invalid(message=f'{kind}.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": '
                                     "at least one of user or group must be specified")
    attrs = spec.get("resourceAttributes")
    if namespace and isinstance(attrs, dict) and attrs.get("namespace") not in (None, "", namespace):
        raise errors.BadRequest(message=f"spec.resourceAttributes.namespace must match namespace: {namespace}")
    if namespace and isinstance(attrs, dict):
        spec = {**spec, "resourceAttributes": {**attrs, "namespace": namespace}}
    subject = Identity(user=user, groups=tuple(str(g) for g in groups if isinstance(g, str)))
    ok, reason = _decide(ctx, subject, spec)
    status: Obj = {"allowed": ok}
    if reason and ok:
        status["reason"] = reason
    return _typed(kind, spec, status, namespace)


AUTHN_GROUP, WHOAMI_PLURAL = "authentication.k8s.io", "selfsubjectreviews"


def whoami(identity: Identity) -> Obj:
    """The caller's user info, as `kubectl auth whoami` prints it."""
    return {"kind": "SelfSubjectReview", "apiVersion": f"{AUTHN_GROUP}/v1", "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": identity.user, "groups": list(identity.groups)}}}
