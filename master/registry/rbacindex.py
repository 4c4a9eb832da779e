"""RBAC decisions: which rules bind a user, whether they allow a request, whether one rule set covers another.

Every request by an identity that is neither an admin nor a node is decided
here, so it must stay cheap with hundreds of roles: the roles and bindings are
held in memory, indexed by subject (`u:NAME`, `g:GROUP`), and rebuilt from the
store only when one of them changed. Changes are noticed through a store watch
on the RBAC prefix that is drained (without waiting) at each decision — no
thread — so a binding written a moment ago applies to the next request.

Rule matching follows Kubernetes' RBAC authorizer: `*` in verbs, apiGroups and
resources; `resource/subresource` and `*/subresource`; `resourceNames` only for
requests that name an object; nonResourceURLs exact or with a trailing `*`,
from ClusterRoles bound cluster-wide only. A RoleBinding that references a
ClusterRole grants its rules within the binding's namespace.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from core import errors
from master.store.base import Store, Watcher

Obj = dict[str, Any]
PREFIX = "/rbac.authorization.k8s.io/"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class Request:
    """What is asked: a resource request (`resource` set) or a non-resource URL (`path`)."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def resource_matches(rule_resources: Any, resource: str, subresource: str) -> bool:
    if not isinstance(rule_resources, list):
        return False
    combined = f"{resource}/{subresource}" if subresource else resource
    return any(r in ("*", combined) or (subresource and r == f"*/{subresource}") for r in rule_resources)


def url_matches(rule_urls: Any, path: str) -> bool:
    if not isinstance(rule_urls, list):
        return False
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])) for u in rule_urls)


def rule_allows(rule: Obj, req: Request) -> bool:
    if not _has(rule.get("verbs"), req.verb):
        return False
    if not req.resource:
        return url_matches(rule.get("nonResourceURLs"), req.path)
    if not _has(rule.get("apiGroups"), req.group):
        return False
    if not resource_matches(rule.get("resources"), req.resource, req.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or req.name in names


def serviceaccount_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _subject_keys(subject: Obj, binding_ns: str) -> str | None:
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind == "User":
        return f"u:{name}"
    if kind == "Group":
        return f"g:{name}"
    if kind == "ServiceAccount":
        return f"u:{serviceaccount_user(str(subject.get('namespace') or binding_ns), name)}"
    return None


@dataclass(frozen=True)
class _Binding:
    namespace: str  # "" for a ClusterRoleBinding
    role_kind: str
    role_name: str
    name: str


class RbacIndex:
    """The roles and bindings in memory, rebuilt when the store says one changed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._watcher: Watcher | None = None
        self._cluster_roles: dict[str, list[Obj]] = {}
        self._roles: dict[tuple[str, str], list[Obj]] = {}
        self._by_subject: dict[str, list[_Binding]] = {}

    # ---- keeping up with the store ------------------------------------------------------------------
    def _refresh(self) -> None:
        """Rebuild if anything under the RBAC prefix changed since the last build (call with the lock)."""
        changed = self._watcher is None
        if self._watcher is not None:
            try:
                while self._watcher.next(0) is not None:
                    changed = True
            except errors.Gone:
                self._watcher.close()
                self._watcher, changed = None, True
        if not changed:
            return
        revision = self._store.revision()
        if self._watcher is None:
            self._watcher = self._store.watch(PREFIX, revision)
        self._rebuild()

    def _rebuild(self) -> None:
        objects, _ = self._store.list(PREFIX)
        cluster_roles: dict[str, list[Obj]] = {}
        roles: dict[tuple[str, str], list[Obj]] = {}
        by_subject: dict[str, list[_Binding]] = {}
        for obj in objects:
            meta = obj.get("metadata") or {}
            kind, ns, name = obj.get("kind"), str(meta.get("namespace") or ""), str(meta.get("name") or "")
            if kind == "ClusterRole":
                cluster_roles[name] = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
            elif kind == "Role":
                roles[(ns, name)] = [r for r in obj.get("rules") or [] if isinstance(r, dict)]
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                ref = obj.get("roleRef") or {}
                binding = _Binding(ns if kind == "RoleBinding" else "", str(ref.get("kind") or ""),
                                   str(ref.get("name") or ""), name)
                for subject in obj.get("subjects") or []:
                    key = _subject_keys(subject, ns) if isinstance(subject, dict) else None
                    if key is not None:
                        by_subject.setdefault(key, []).append(binding)
        self._cluster_roles, self._roles, self._by_subject = cluster_roles, roles, by_subject

    # ---- questions ----------------------------------------------------------------------------------
    def _bindings(self, user: str, groups: tuple[str, ...]) -> list[_Binding]:
        keys = [f"u:{user}", *(f"g:{g}" for g in groups)]
        if AUTHENTICATED not in groups:
            keys.append(f"g:{AUTHENTICATED}")
        found: list[_Binding] = []
        for key in keys:
            found += self._by_subject.get(key, ())
        return found

    def _rules_of(self, b: _Binding) -> list[Obj]:
        if b.role_kind == "ClusterRole":
            return self._cluster_roles.get(b.role_name, [])
        if b.role_kind == "Role" and b.namespace:
            return self._roles.get((b.namespace, b.role_name), [])
        return []

    def allows(self, user: str, groups: tuple[str, ...], req: Request) -> bool:
        with self._lock:
            self._refresh()
            for b in self._bindings(user, groups):
                if b.namespace and (not req.resource or b.namespace != req.namespace):
                    continue  # a RoleBinding grants within its namespace, and no non-resource URLs
                if any(rule_allows(rule, req) for rule in self._rules_of(b)):
                    return True
        return False

    def rules_for(self, user: str, groups: tuple[str, ...], namespace: str) -> list[Obj]:
        """Every rule that applies to the user in `namespace` (cluster-wide ones included)."""
        with self._lock:
            self._refresh()
            out: list[Obj] = []
            for b in self._bindings(user, groups):
                if b.namespace and b.namespace != namespace:
                    continue
                rules = self._rules_of(b)
                out += [r for r in rules if not (b.namespace and r.get("nonResourceURLs"))]
            return out

    def role_rules(self, kind: str, namespace: str, name: str) -> list[Obj] | None:
        """The rules of a ClusterRole (namespace ignored) or a Role; None when it does not exist."""
        with self._lock:
            self._refresh()
            if kind == "ClusterRole":
                return self._cluster_roles.get(name)
            return self._roles.get((namespace, name))

    def close(self) -> None:
        with self._lock:
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None


# ---- escalation: does one rule set hold every permission of another ---------------------------------
def _atoms(rule: Obj) -> list[Request]:
    verbs = [str(v) for v in rule.get("verbs") or []]
    if rule.get("nonResourceURLs"):
        return [Request(v, path=str(u)) for v in verbs for u in rule["nonResourceURLs"]]
    names = [str(n) for n in rule.get("resourceNames") or []] or [""]
    out = []
    for v in verbs:
        for g in rule.get("apiGroups") or []:
            for r in rule.get("resources") or []:
                resource, _, sub = str(r).partition("/")
                for n in names:
                    out.append(Request(v, str(g), resource, sub, name=n))
    return out


def _atom_held(owner: list[Obj], atom: Request) -> bool:
    """An atom (possibly with `*` values) is held when some owner rule allows it literally."""
    for rule in owner:
        if not _has(rule.get("verbs"), atom.verb):
            continue
        if not atom.resource:
            if url_matches(rule.get("nonResourceURLs"), atom.path):
                return True
            continue
        if not _has(rule.get("apiGroups"), atom.group):
            continue
        if not resource_matches(rule.get("resources"), atom.resource, atom.subresource):
            continue
        names = rule.get("resourceNames") or []
        if not names or (atom.name and atom.name in names):
            return True
    return False


def missing_rules(owner: list[Obj], wanted: list[Obj]) -> list[Obj]:
    """The rules of `wanted` that `owner` does not hold in full, compacted as Kubernetes prints them."""
    return [rule for rule in wanted if not all(_atom_held(owner, a) for a in _atoms(rule))]


def compact(rule: Obj) -> str:
    """Kubernetes' CompactString of a PolicyRule: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`."""
    def quoted(values: Any) -> str:
        return "[" + " ".join(f'"{v}"' for v in values or []) + "]"
    parts = []
    for title, key in (("APIGroups", "apiGroups"), ("Resources", "resources"), ("ResourceNames", "resourceNames"),
                       ("NonResourceURLs", "nonResourceURLs"), ("Verbs", "verbs")):
        if rule.get(key):
            parts.append(f"{title}:{quoted(rule[key])}")
    return "{" + ", ".join(parts) + "}"
