"""The RBAC kinds' rules (Role, ClusterRole, RoleBinding, ClusterRoleBinding): defaults, validation, columns.

Names are path segments, as in Kubernetes (`system:aggregate-to-view` is a valid
ClusterRole name). A binding's `roleRef` never changes after creation: to point
a binding at another role, it is deleted and made again (`kubectl auth
reconcile` does that). Who may write which rules (escalation prevention) is
admission's business (master/registry/admission.py), not these strategies'.
"""

from __future__ import annotations

from typing import Any

from core.errors import Cause
from master.registry.resource import Strategy
from master.registry.tables import AGE, NAME, Column, TableDef

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("Group", "ServiceAccount", "User")


def _go_strings(values: Any) -> str:
    items = values if isinstance(values, list) else []
    return "[]string{" + ", ".join(f'"{v}"' for v in items) + "}"


def _path_segment_causes(obj: Obj) -> list[Cause]:
    name = str((obj.get("metadata") or {}).get("name") or "")
    for bad in ("/", "%"):
        if bad in name:
            return [Cause("metadata.name", f'Invalid value: "{name}": may not contain \'{bad}\'')]
    if name in (".", ".."):
        return [Cause("metadata.name", f'Invalid value: "{name}": may not be \'{name}\'')]
    return []


def rule_causes(rules: Any, namespaced: bool, path: str = "rules") -> list[Cause]:
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [Cause(path, "Invalid value: must be a list")]
    causes: list[Cause] = []
    for i, rule in enumerate(rules):
        p = f"{path}[{i}]"
        if not isinstance(rule, dict):
            causes.append(Cause(p, "Invalid value: must be an object"))
            continue
        if not rule.get("verbs"):
            causes.append(Cause(f"{p}.verbs", "Required value: verbs must contain at least one value",
                                "FieldValueRequired"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                causes.append(Cause(f"{p}.nonResourceURLs", f"Invalid value: {_go_strings(urls)}: namespaced "
                                    "rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources"):
                causes.append(Cause(f"{p}.nonResourceURLs", f"Invalid value: {_go_strings(urls)}: rules cannot "
                                    "apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            causes.append(Cause(f"{p}.apiGroups", "Required value: resource rules must supply at least one api "
                                "group", "FieldValueRequired"))
        if not rule.get("resources"):
            causes.append(Cause(f"{p}.resources", "Required value: resource rules must supply at least one "
                                "resource", "FieldValueRequired"))
        for fld in ("verbs", "apiGroups", "resources", "resourceNames"):
            value = rule.get(fld)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                causes.append(Cause(f"{p}.{fld}", "Invalid value: must be a list of strings"))
    return causes


class RoleStrategy(Strategy):
    name_rule = ""
    namespaced = True

    def validate(self, obj: Obj) -> list[Cause]:
        return _path_segment_causes(obj) + rule_causes(obj.get("rules"), self.namespaced)


class ClusterRoleStrategy(RoleStrategy):
    namespaced = False

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        aggregation = obj.get("aggregationRule")
        if aggregation is not None:
            selectors = aggregation.get("clusterRoleSelectors") if isinstance(aggregation, dict) else None
            if not isinstance(selectors, list):
                causes.append(Cause("aggregationRule.clusterRoleSelectors", "Required value", "FieldValueRequired"))
        return causes


def default_subjects(obj: Obj) -> None:
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and s.get("apiGroup") is None:
            s["apiGroup"] = "" if s.get("kind") == "ServiceAccount" else GROUP


class RoleBindingStrategy(Strategy):
    name_rule = ""
    role_kinds: tuple[str, ...] = ("ClusterRole", "Role")
    namespaced = True

    def default(self, obj: Obj) -> None:
        default_subjects(obj)
        ref = obj.get("roleRef")
        if isinstance(ref, dict) and ref.get("apiGroup") is None:
            ref["apiGroup"] = GROUP

    def validate(self, obj: Obj) -> list[Cause]:
        causes = _path_segment_causes(obj)
        ref = obj.get("roleRef")
        if not isinstance(ref, dict):
            return [*causes, Cause("roleRef.name", "Required value", "FieldValueRequired")]
        if ref.get("apiGroup") != GROUP:
            causes.append(Cause("roleRef.apiGroup", f'Unsupported value: "{ref.get("apiGroup")}": supported '
                                f'values: "{GROUP}"', "FieldValueNotSupported"))
        if ref.get("kind") not in self.role_kinds:
            causes.append(Cause("roleRef.kind", f'Unsupported value: "{ref.get("kind")}": supported values: '
                                + ", ".join(f'"{k}"' for k in self.role_kinds), "FieldValueNotSupported"))
        if not ref.get("name"):
            causes.append(Cause("roleRef.name", "Required value", "FieldValueRequired"))
        subjects = obj.get("subjects")
        for i, s in enumerate(subjects if isinstance(subjects, list) else []):
            p = f"subjects[{i}]"
            if not isinstance(s, dict):
                causes.append(Cause(p, "Invalid value: must be an object"))
                continue
            kind = s.get("kind")
            if kind not in SUBJECT_KINDS:
                causes.append(Cause(f"{p}.kind", f'Unsupported value: "{kind}": supported values: "Group", '
                                    '"ServiceAccount", "User"', "FieldValueNotSupported"))
                continue
            if not s.get("name"):
                causes.append(Cause(f"{p}.name", "Required value", "FieldValueRequired"))
            if kind == "ServiceAccount":
                if s.get("apiGroup"):
                    causes.append(Cause(f"{p}.apiGroup", f'Unsupported value: "{s["apiGroup"]}": supported '
                                        'values: ""', "FieldValueNotSupported"))
                if not self.namespaced and not s.get("namespace"):
                    causes.append(Cause(f"{p}.namespace", "Required value", "FieldValueRequired"))
            elif s.get("apiGroup") != GROUP:
                causes.append(Cause(f"{p}.apiGroup", f'Unsupported value: "{s.get("apiGroup")}": supported '
                                    f'values: "{GROUP}"', "FieldValueNotSupported"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("roleRef") != old.get("roleRef"):
            raw = new.get("roleRef")
            ref: Obj = raw if isinstance(raw, dict) else {}
            shown = (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
                     f'Name:"{ref.get("name", "")}"}}')
            return [Cause("roleRef", f"Invalid value: {shown}: cannot change roleRef")]
        return []


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    role_kinds = ("ClusterRole",)
    namespaced = False


def _role_cell(o: Obj, now: Any) -> str:
    ref = o.get("roleRef") or {}
    return f"{ref.get('kind')}/{ref.get('name')}"


def _subjects_of(kind: str) -> Any:
    def cell(o: Obj, now: Any) -> str:
        names = []
        for s in o.get("subjects") or []:
            if s.get("kind") != kind:
                continue
            names.append(f"{s.get('namespace')}/{s.get('name')}" if kind == "ServiceAccount" else str(s.get("name")))
        return ", ".join(names)
    return cell


CREATED_AT = Column("Created At", lambda o, n: (o.get("metadata") or {}).get("creationTimestamp"), type="date",
                    description="CreationTimestamp is a timestamp representing the server time when this object "
                                "was created.")
ROLE_TABLE = TableDef((NAME, CREATED_AT))
BINDING_TABLE = TableDef((
    NAME,
    Column("Role", _role_cell, description="RoleRef is the reference to the role this binding grants."),
    AGE,
    Column("Users", _subjects_of("User"), priority=1, description="Users in the binding."),
    Column("Groups", _subjects_of("Group"), priority=1, description="Groups in the binding."),
    Column("ServiceAccounts", _subjects_of("ServiceAccount"), priority=1,
           description="ServiceAccounts in the binding."),
))
