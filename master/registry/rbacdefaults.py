"""The roles and bindings every cluster starts with, as Kubernetes bootstraps them (the ones pikube's API needs).

- `cluster-admin`, bound to the group `system:masters` (the admin certificate);
- `system:discovery`, `system:basic-user` and `system:public-info-viewer`, bound to
  every authenticated identity: discovery and OpenAPI, "may I?" questions,
  health and version;
- the user-facing `admin`, `edit` and `view`, aggregated (by the cluster-role
  aggregation controller) from `system:aggregate-to-admin|edit|view` and
  `system:aggregated-metrics-reader`, so `kubectl create rolebinding --clusterrole=view`
  works as on any cluster; `view` never reads secrets, `edit` may exec into
  pods and write secrets but not roles, `admin` may also manage roles and
  bindings in its namespace.

Each carries `kubernetes.io/bootstrapping: rbac-defaults` and
`rbac.authorization.kubernetes.io/autoupdate: "true"`; a master restores the
rules of those it finds changed while autoupdate is true, as Kubernetes does
(set it to "false" to keep an edited default).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _meta(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
            "annotations": {AUTOUPDATE: "true"}}


def _aggregate(to: str) -> dict[str, str]:
    return {f"{GROUP}/aggregate-to-{to}": "true"}


_VIEW_CORE = ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
              "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
              "services/status", "bindings", "events", "limitranges", "namespaces/status", "pods/log",
              "pods/status", "replicationcontrollers/status", "resourcequotas", "resourcequotas/status", "namespaces"]
_VIEW_APPS = ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
              "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
              "statefulsets/scale", "statefulsets/status"]
_EDIT_CORE = ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "configmaps", "endpoints",
              "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets",
              "serviceaccounts", "services", "services/proxy"]


def cluster_roles() -> list[Obj]:
    return [
        {"metadata": _meta("cluster-admin"), "rules": [_rule(["*"], ["*"], ["*"]),
                                                       {"nonResourceURLs": ["*"], "verbs": ["*"]}]},
        {"metadata": _meta("system:discovery"), "rules": [{"nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
            "/version", "/version/"], "verbs": ["get"]}]},
        {"metadata": _meta("system:public-info-viewer"), "rules": [{"nonResourceURLs": [
            "/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]},
        {"metadata": _meta("system:basic-user"), "rules": [
            _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
            _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"])]},
        {"metadata": _meta("admin"), "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": _aggregate("admin")}]}, "rules": []},
        {"metadata": _meta("edit", _aggregate("admin")), "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": _aggregate("edit")}]}, "rules": []},
        {"metadata": _meta("view", _aggregate("edit")), "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": _aggregate("view")}]}, "rules": []},
        {"metadata": _meta("system:aggregate-to-admin", _aggregate("admin")), "rules": [
            _rule([GROUP], ["rolebindings", "roles"], [*_WRITE, *_READ]),
            _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"])]},
        {"metadata": _meta("system:aggregate-to-edit", _aggregate("edit")), "rules": [
            _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                         "services/proxy"], _READ),
            _rule([""], ["serviceaccounts"], ["impersonate"]),
            _rule([""], _EDIT_CORE, _WRITE),
            _rule([""], ["serviceaccounts/token"], ["create"]),
            _rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                             "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"], _WRITE),
            _rule(["autoscaling"], ["horizontalpodautoscalers"], _WRITE),
            _rule(["batch"], ["cronjobs", "jobs"], _WRITE),
            _rule(["policy"], ["poddisruptionbudgets"], _WRITE)]},
        {"metadata": _meta("system:aggregate-to-view", _aggregate("view")), "rules": [
            _rule([""], _VIEW_CORE, _READ),
            _rule(["apps"], _VIEW_APPS, _READ),
            _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], _READ),
            _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], _READ),
            _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], _READ),
            _rule(["coordination.k8s.io"], ["leases"], _READ)]},
        {"metadata": _meta("system:service-account-issuer-discovery"), "rules": [{"nonResourceURLs": [
            "/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks",
            "/openid/v1/jwks/"], "verbs": ["get"]}]},
        {"metadata": _meta("system:aggregated-metrics-reader",
                           _aggregate("admin") | _aggregate("edit") | _aggregate("view")),
         "rules": [_rule(["metrics.k8s.io"], ["pods", "nodes"], _READ)]},
    ]


def _binding(name: str, role: str, groups: list[str]) -> Obj:
    return {"metadata": _meta(name), "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups]}


def cluster_role_bindings() -> list[Obj]:
    return [
        _binding("cluster-admin", "cluster-admin", ["system:masters"]),
        _binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _binding("system:public-info-viewer", "system:public-info-viewer",
                 ["system:authenticated", "system:unauthenticated"]),
        _binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                 ["system:serviceaccounts"]),
    ]
