"""RBAC's decisions over an in-process store: rule matching as Kubernetes' authorizer does it, bindings confined to
their namespace, the in-memory index following writes at once, and the escalation check's arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from master.registry.rbacindex import RbacIndex, Request, compact, missing_rules, rule_allows
from master.store.sqlite import SqliteStore

Obj = dict[str, Any]
G = "rbac.authorization.k8s.io"


def rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> Obj:
    out: Obj = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


def test_rule_matching_wildcards_subresources_names_and_urls() -> None:
    pods = rule([""], ["pods"], ["get", "list"])
    assert rule_allows(pods, Request("get", "", "pods", namespace="a", name="x"))
    assert not rule_allows(pods, Request("delete", "", "pods", name="x"))
    assert not rule_allows(pods, Request("get", "apps", "pods"))
    assert not rule_allows(pods, Request("get", "", "pods", "log"))  # a subresource is its own resource
    assert rule_allows(rule([""], ["pods/log"], ["get"]), Request("get", "", "pods", "log"))
    assert rule_allows(rule([""], ["*/scale"], ["get"]), Request("get", "", "deployments", "scale"))
    assert not rule_allows(rule([""], ["*/scale"], ["get"]), Request("get", "", "deployments"))
    assert rule_allows(rule(["*"], ["*"], ["*"]), Request("escalate", G, "roles", name="r"))
    named = rule([""], ["configmaps"], ["get", "list"], ["app"])
    assert rule_allows(named, Request("get", "", "configmaps", name="app"))
    assert not rule_allows(named, Request("get", "", "configmaps", name="other"))
    assert not rule_allows(named, Request("list", "", "configmaps"))  # no name: resourceNames cannot match
    urls = {"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}
    assert rule_allows(urls, Request("get", path="/healthz"))
    assert rule_allows(urls, Request("get", path="/apis/apps/v1"))
    assert not rule_allows(urls, Request("get", path="/api"))
    assert not rule_allows(urls, Request("post", path="/healthz"))
    assert not rule_allows(urls, Request("get", "", "pods"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    yield s
    s.close()


def put(store: SqliteStore, plural: str, kind: str, name: str, ns: str = "", **body: Any) -> None:
    key = f"/{G}/{plural}/{ns + '/' if ns else ''}{name}"
    meta: Obj = {"name": name, **({"namespace": ns} if ns else {})}
    store.create(key, {"apiVersion": f"{G}/v1", "kind": kind, "metadata": meta, **body})


def test_bindings_grant_where_they_are_and_the_index_follows_writes(store: SqliteStore) -> None:
    index = RbacIndex(store)
    ask = Request("list", "", "pods", namespace="team")
    assert not index.allows("alice", (), ask)
    put(store, "clusterroles", "ClusterRole", "reader", rules=[rule([""], ["pods"], ["list"])])
    put(store, "rolebindings", "RoleBinding", "alice-reads", "team",
        roleRef={"apiGroup": G, "kind": "ClusterRole", "name": "reader"},
        subjects=[{"apiGroup": G, "kind": "User", "name": "alice"}])
    assert index.allows("alice", (), ask)  # seen at once, without a thread
    assert not index.allows("alice", (), Request("list", "", "pods", namespace="other"))
    assert not index.allows("bob", (), ask)
    # A group subject, a service account subject (namespace from the binding), a cluster-wide binding.
    put(store, "rolebindings", "RoleBinding", "bots", "team",
        roleRef={"apiGroup": G, "kind": "ClusterRole", "name": "reader"},
        subjects=[{"kind": "ServiceAccount", "name": "bot"}, {"apiGroup": G, "kind": "Group", "name": "staff"}])
    assert index.allows("system:serviceaccount:team:bot", (), ask)
    assert not index.allows("system:serviceaccount:other:bot", (), ask)
    assert index.allows("carol", ("staff",), ask)
    put(store, "clusterrolebindings", "ClusterRoleBinding", "everyone-reads",
        roleRef={"apiGroup": G, "kind": "ClusterRole", "name": "reader"},
        subjects=[{"apiGroup": G, "kind": "Group", "name": "system:authenticated"}])
    assert index.allows("anyone", (), Request("list", "", "pods", namespace="other"))
    store.delete(f"/{G}/clusterrolebindings/everyone-reads")
    assert not index.allows("anyone", (), Request("list", "", "pods", namespace="other"))
    # A Role is confined to its namespace; a RoleBinding never grants non-resource URLs.
    put(store, "roles", "Role", "cm", "team", rules=[rule([""], ["configmaps"], ["get"])])
    put(store, "clusterroles", "ClusterRole", "urls", rules=[{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    put(store, "rolebindings", "RoleBinding", "dave", "team",
        roleRef={"apiGroup": G, "kind": "Role", "name": "cm"},
        subjects=[{"apiGroup": G, "kind": "User", "name": "dave"}])
    put(store, "rolebindings", "RoleBinding", "dave-urls", "team",
        roleRef={"apiGroup": G, "kind": "ClusterRole", "name": "urls"},
        subjects=[{"apiGroup": G, "kind": "User", "name": "dave"}])
    assert index.allows("dave", (), Request("get", "", "configmaps", namespace="team", name="x"))
    assert not index.allows("dave", (), Request("get", path="/metrics"))
    assert [r for r in index.rules_for("dave", (), "team") if r.get("nonResourceURLs")] == []
    index.close()


def test_escalation_needs_every_atom_of_every_rule() -> None:
    owner = [rule(["", "apps"], ["pods", "deployments"], ["get", "list"]), rule([""], ["secrets"], ["get"], ["a"])]
    assert missing_rules(owner, [rule([""], ["pods"], ["get"])]) == []
    assert missing_rules(owner, [rule(["apps"], ["deployments"], ["list"])]) == []
    wider = rule([""], ["pods"], ["get", "delete"])
    assert missing_rules(owner, [wider]) == [wider]
    assert missing_rules(owner, [rule([""], ["secrets"], ["get"], ["a"])]) == []
    assert missing_rules(owner, [rule([""], ["secrets"], ["get"])]) != []  # all secrets: more than secret "a"
    star = rule(["*"], ["*"], ["*"])
    assert missing_rules(owner, [star]) == [star]
    assert missing_rules([star], [star, wider]) == []
    assert compact(star) == '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}'
    urls = {"nonResourceURLs": ["*"], "verbs": ["get", "post"]}
    assert compact(urls) == '{NonResourceURLs:["*"], Verbs:["get" "post"]}'
