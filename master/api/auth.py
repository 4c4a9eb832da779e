"""Who is asking, and may they: client certificates and tokens in, allow or 403 out.

Admins (group `system:masters`) may do everything. Everyone else is decided by
RBAC (master/registry/rbacindex.py: Roles, ClusterRoles and their bindings),
nodes first by the node authorizer below and then by RBAC. A node identity
(`system:node:NAME` in `system:nodes`) may do what its agent needs and no more,
in the spirit of Kubernetes' Node authorizer: its own Node and Lease, the pods
bound to it and the config maps and secrets those pods use, services and
endpoints for its proxy, and events — never a stream into a pod (exec, attach,
port-forward), a proxy subresource or another pod's logs.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from core import errors
from master.registry.context import ApiContext, Identity
from master.registry.rbacindex import AUTHENTICATED, Request, serviceaccount_user
from master.registry.resource import ResourceType
from master.registry.satokens import ServiceAccountTokens

Obj = dict[str, Any]


@dataclass(frozen=True)
class Attributes:
    verb: str
    resource: ResourceType
    namespace: str
    name: str
    subresource: str
    # The exact spec.nodeName a list/watch asked for, if any.
    node_selector: str | None = None


def authenticate(environ: dict[str, Any], admin_token: str,
                 tokens: ServiceAccountTokens | None = None) -> Identity | None:
    """The identity a verified client certificate or a bearer token (the admin's, a service account's) carries."""
    if environ.get("SSL_CLIENT_VERIFY") == "SUCCESS":
        cn = str(environ.get("SSL_CLIENT_S_DN_CN") or "")
        orgs = _orgs(environ)
        if cn:  # every authenticated identity is in system:authenticated, as Kubernetes adds it
            return Identity(user=cn, groups=tuple(dict.fromkeys([*orgs, AUTHENTICATED])))
    header = str(environ.get("HTTP_AUTHORIZATION") or "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer":  # the scheme is case-insensitive (the Python client sends "bearer")
        token = token.strip()
        if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            return Identity(user="pikube-admin", groups=("system:masters", AUTHENTICATED))
        if tokens is not None and token.count(".") == 2:
            found = tokens.authenticate(token)
            if found is not None:
                return Identity(user=found[0], groups=found[1])
    return None


def _orgs(environ: dict[str, Any]) -> list[str]:
    orgs = []
    for key, value in environ.items():
        if key == "SSL_CLIENT_S_DN_O" or key.startswith("SSL_CLIENT_S_DN_O_"):
            orgs.append(str(value))
    return orgs


def forbidden(identity: Identity, attrs: Attributes) -> errors.Forbidden:
    rt = attrs.resource
    res = rt.plural + (f"/{attrs.subresource}" if attrs.subresource else "")
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    named = f' "{attrs.name}"' if attrs.name else ""
    return errors.Forbidden(
        message=f'{rt.plural}{named} is forbidden: User "{identity.user}" cannot {attrs.verb} resource '
                f'"{res}" in API group "{rt.group}" {where}',
        kind=rt.plural, name=attrs.name, group=rt.group)


def authorize(ctx: ApiContext, identity: Identity, attrs: Attributes) -> None:
    if identity.is_admin:
        return
    node = identity.node_name
    if node is not None and _node_allows(ctx, node, attrs):
        return
    rt = attrs.resource
    if ctx.rbac.allows(identity.user, identity.groups, Request(attrs.verb, rt.group, rt.plural, attrs.subresource,
                                                               attrs.namespace, attrs.name)):
        return
    raise forbidden(identity, attrs)


def allowed(ctx: ApiContext, identity: Identity, request: Request) -> bool:
    """RBAC's answer for a request that names no catalog resource (metrics.k8s.io, users, paths)."""
    return identity.is_admin or ctx.rbac.allows(identity.user, identity.groups, request)


def authorize_path(ctx: ApiContext, identity: Identity, verb: str, path: str) -> None:
    """A non-resource URL (`/api`, `/openapi/v2` ...): RBAC's nonResourceURLs rules."""
    if not allowed(ctx, identity, Request(verb, path=path)):
        raise errors.Forbidden(message=f'forbidden: User "{identity.user}" cannot {verb} path "{path}"')


def impersonate(ctx: ApiContext, identity: Identity, user: str, groups: list[str]) -> Identity:
    """The identity `identity` asks to act as (`kubectl --as`/`--as-group`), if it may impersonate it.

    As Kubernetes: impersonating a service account needs `impersonate` on that
    `serviceaccounts` object, any other user on `users`, each group on `groups`;
    the impersonated identity is authenticated (and a service account's groups
    are added).
    """
    if not user:
        raise errors.BadRequest(message="requested impersonation of groups without impersonating a user")
    checks: list[tuple[Request, str]] = []
    parts = user.split(":")
    if len(parts) == 4 and user.startswith("system:serviceaccount:"):
        checks.append((Request("impersonate", "", "serviceaccounts", namespace=parts[2], name=parts[3]),
                       f'serviceaccounts "{parts[3]}" is forbidden: User "{identity.user}" cannot impersonate '
                       f'resource "serviceaccounts" in API group "" in the namespace "{parts[2]}"'))
    else:
        checks.append((Request("impersonate", "", "users", name=user),
                       f'users "{user}" is forbidden: User "{identity.user}" cannot impersonate resource "users" '
                       'in API group "" at the cluster scope'))
    for group in groups:
        checks.append((Request("impersonate", "", "groups", name=group),
                       f'groups "{group}" is forbidden: User "{identity.user}" cannot impersonate resource '
                       '"groups" in API group "" at the cluster scope'))
    for request, message in checks:
        if not allowed(ctx, identity, request):
            raise errors.Forbidden(message=message, kind=request.resource, name=request.name)
    found = list(groups)
    if len(parts) == 4 and user == serviceaccount_user(parts[2], parts[3]):
        found += ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"]
    if user != "system:anonymous" and "system:authenticated" not in found:
        found.append("system:authenticated")
    return Identity(user=user, groups=tuple(dict.fromkeys(found)))


_READ = ("get", "list", "watch")


# Subresources that reach into pods and boards (streams, proxies, logs): never a node's business.
_CONNECT = ("exec", "attach", "portforward", "proxy", "log")


def _node_allows(ctx: ApiContext, node: str, a: Attributes) -> bool:
    kind = a.resource.kind
    if a.subresource in _CONNECT:
        return False
    if kind == "Node":
        if a.verb in _READ:
            return True
        return a.name == node and a.verb in ("create", "update", "patch", "get")
    if kind == "Lease":
        return a.namespace == "kube-node-lease" and a.name == node and \
            a.verb in ("get", "create", "update", "patch")
    if kind in ("Service", "Endpoints"):
        return a.verb in _READ
    if kind == "Event":
        return a.verb in ("create", "update", "patch")
    if kind == "Pod":
        if a.verb in ("list", "watch"):
            return a.node_selector == node
        if a.verb in ("get", "delete") or (a.verb in ("update", "patch") and a.subresource == "status"):
            pod = ctx.store.get(a.resource.key(a.namespace, a.name))
            return pod is not None and (pod.get("spec") or {}).get("nodeName") == node
        return False
    if kind == "ServiceAccount":  # tokens for its pods' service accounts (tokenrequest.py checks the pod)
        return a.subresource == "token" and a.verb == "create" and _account_of_node_pod(ctx, node, a)
    if kind in ("ConfigMap", "Secret", "PersistentVolumeClaim"):
        return a.verb == "get" and _used_by_node_pod(ctx, node, a)
    if kind == "PersistentVolume":
        return a.verb == "get" and _volume_of_node_pod(ctx, node, a.name)
    return False


def _account_of_node_pod(ctx: ApiContext, node: str, a: Attributes) -> bool:
    pods, _ = ctx.store.list(f"/core/pods/{a.namespace}/")
    return any((p.get("spec") or {}).get("nodeName") == node and
               ((p.get("spec") or {}).get("serviceAccountName") or "default") == a.name for p in pods)


def _volume_of_node_pod(ctx: ApiContext, node: str, volume: str) -> bool:
    """The volume is bound to a claim that one of the node's pods uses (Kubernetes' node authoriser's rule)."""
    pv = ctx.store.get(f"/core/persistentvolumes/{volume}")
    ref = ((pv or {}).get("spec") or {}).get("claimRef") or {}
    if not ref.get("name"):
        return False
    ns = str(ref.get("namespace") or "")
    pods, _ = ctx.store.list(f"/core/pods/{ns}/")
    return any((p.get("spec") or {}).get("nodeName") == node and
               str(ref["name"]) in _references(p.get("spec") or {}, "PersistentVolumeClaim") for p in pods)


def _used_by_node_pod(ctx: ApiContext, node: str, a: Attributes) -> bool:
    pods, _ = ctx.store.list(f"/core/pods/{a.namespace}/")
    for pod in pods:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") != node:
            continue
        if a.name in _references(spec, a.resource.kind):
            return True
    return False


def _references(spec: Obj, kind: str) -> set[str]:
    """Names of config maps, secrets or claims a pod spec refers to (volumes, env, envFrom)."""
    names: set[str] = set()
    if kind == "PersistentVolumeClaim":
        return {str((v.get("persistentVolumeClaim") or {}).get("claimName") or "") for v in spec.get("volumes") or []
                if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)} - {""}
    vol_key, ref_key, env_key = ("configMap", "configMapRef", "configMapKeyRef") if kind == "ConfigMap" \
        else ("secret", "secretRef", "secretKeyRef")
    for v in spec.get("volumes") or []:
        src = v.get(vol_key) if isinstance(v, dict) else None
        if isinstance(src, dict):
            names.add(str(src.get("name") or src.get("secretName") or ""))
        projected = (v.get("projected") or {}).get("sources") or [] if isinstance(v, dict) else []
        for s in projected:
            ref = s.get(vol_key) if isinstance(s, dict) else None
            if isinstance(ref, dict):
                names.add(str(ref.get("name") or ""))
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for e in c.get("env") or []:
            ref = ((e.get("valueFrom") or {}).get(env_key)) if isinstance(e, dict) else None
            if isinstance(ref, dict):
                names.add(str(ref.get("name") or ""))
        for e in c.get("envFrom") or []:
            ref = e.get(ref_key) if isinstance(e, dict) else None
            if isinstance(ref, dict):
                names.add(str(ref.get("name") or ""))
    for s in spec.get("imagePullSecrets") or []:
        if kind == "Secret" and isinstance(s, dict):
            names.add(str(s.get("name") or ""))
    names.discard("")
    return names
