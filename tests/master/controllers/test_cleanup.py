"""Deleting things leaves nothing behind: Deployments (background, foreground, orphan) and namespaces.

Also the Endpoints of a Service: ready pods under `addresses`, others under
`notReadyAddresses`, named target ports resolved per pod.
"""

from __future__ import annotations

import pytest

from pikube.sim.api import resource_path
from tests.master.controllers.conftest import Cluster, wait_for

pytestmark = pytest.mark.integration

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %(ns)s}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1", ports: [{name: http, containerPort: %(port)s}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %(ns)s}
spec:
  selector: {app: web}
  ports: [{name: web, port: 80, targetPort: http}]
"""


def leftovers(c: Cluster, ns: str) -> list[str]:
    found = []
    for api, plural in (("apps/v1", "deployments"), ("apps/v1", "replicasets"), ("v1", "pods")):
        found += [f"{plural}/{o['metadata']['name']}" for o in c.admin.get(resource_path(api, plural, ns))["items"]]
    return found


def endpoints(c: Cluster, ns: str) -> dict[str, set[tuple[str, int]]]:
    ep = c.get("v1", "endpoints", ns, "web") or {}
    out: dict[str, set[tuple[str, int]]] = {"ready": set(), "not_ready": set()}
    for s in ep.get("subsets") or []:
        port = s["ports"][0]["port"]
        out["ready"] |= {(a["ip"], port) for a in s.get("addresses") or []}
        out["not_ready"] |= {(a["ip"], port) for a in s.get("notReadyAddresses") or []}
    return out


def test_endpoints_follow_pods(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("ep")
    c.kubectl("apply", "-f", "-", input=APP % {"ns": ns, "port": 8080})
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    wait_for(lambda: len(endpoints(c, ns)["ready"]) == 3, what="three ready addresses")
    assert {port for _, port in endpoints(c, ns)["ready"]} == {8080}, "named targetPort resolved"
    c.admin.create(resource_path("v1", "pods", ns), {
        "metadata": {"name": "warming", "labels": {"app": "web"},
                     "annotations": {"sim.pikube.io/never-ready": "true"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:2", "ports": [{"name": "http",
                                                                               "containerPort": 9090}]}]}})
    wait_for(lambda: endpoints(c, ns)["not_ready"] and {p for _, p in endpoints(c, ns)["not_ready"]} == {9090},
             what="the unready pod under notReadyAddresses, on its own port")
    c.kubectl("delete", "pod", "warming", "-n", ns)
    wait_for(lambda: not endpoints(c, ns)["not_ready"], what="the deleted pod gone from the endpoints")
    killing = c.kubectl("get", "events", "-n", ns, "--field-selector", "reason=Killing").stdout
    assert "Stopping container web" in killing, "the board's kubelet says it stopped the container"


def test_delete_deployment_background(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("bg")
    c.kubectl("apply", "-f", "-", input=APP % {"ns": ns, "port": 80})
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    c.kubectl("delete", "deployment", "web", "-n", ns)
    wait_for(lambda: not leftovers(c, ns), what="no ReplicaSet or pod left")
    wait_for(lambda: endpoints(c, ns) == {"ready": set(), "not_ready": set()}, what="no endpoint addresses left")
    c.kubectl("delete", "service", "web", "-n", ns)
    wait_for(lambda: c.get("v1", "endpoints", ns, "web") is None, what="the endpoints gone with the service")


def test_delete_deployment_foreground(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("fg")
    c.kubectl("apply", "-f", "-", input=APP % {"ns": ns, "port": 80})
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    seen_waiting = []

    def gone() -> bool:
        d = c.get("apps/v1", "deployments", ns, "web")
        if d is not None and "foregroundDeletion" in (d["metadata"].get("finalizers") or []):
            seen_waiting.append(len(c.pods(ns)))
        return not leftovers(c, ns)

    c.kubectl("delete", "deployment", "web", "-n", ns, "--cascade=foreground", "--wait=false")
    wait_for(gone, what="deployment, ReplicaSet and pods all gone", every=0.02)
    assert seen_waiting, "the deployment waited for its dependents"
    wait_for(lambda: endpoints(c, ns) == {"ready": set(), "not_ready": set()}, what="no endpoint addresses left")


def test_foreground_deletion_spares_a_dependent_with_another_owner(cluster: Cluster) -> None:
    """`shared` has two owners, `only` one: deleting `first` in the foreground takes `only` with it and leaves
    `shared` to `second`, without the reference to `first`; deleting `second` then takes `shared`."""
    c, ns = cluster, cluster.namespace("fg-shared")
    path = resource_path("v1", "configmaps", ns)
    uids = {name: c.admin.create(path, {"metadata": {"name": name}})["metadata"]["uid"] for name in ("first", "second")}

    def ref(name: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uids[name], "blockOwnerDeletion": True}

    c.admin.create(path, {"metadata": {"name": "shared", "ownerReferences": [ref("first"), ref("second")]}})
    c.admin.create(path, {"metadata": {"name": "only", "ownerReferences": [ref("first")]}})
    c.kubectl("delete", "configmap", "first", "-n", ns, "--cascade=foreground", "--timeout=30s")
    assert c.get("v1", "configmaps", ns, "first") is None, "kubectl waited for the owner to go"
    assert c.get("v1", "configmaps", ns, "only") is None, "its sole owner went in the foreground: it went first"
    shared = c.get("v1", "configmaps", ns, "shared")
    assert shared is not None and not shared["metadata"].get("deletionTimestamp"), "another owner keeps it"
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["second"]
    c.kubectl("delete", "configmap", "second", "-n", ns)
    wait_for(lambda: c.get("v1", "configmaps", ns, "shared") is None, what="the dependent gone with its last owner")


def test_delete_deployment_orphan(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("orphan")
    c.kubectl("apply", "-f", "-", input=APP % {"ns": ns, "port": 80})
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    c.kubectl("delete", "deployment", "web", "-n", ns, "--cascade=orphan")
    wait_for(lambda: c.get("apps/v1", "deployments", ns, "web") is None, what="the deployment gone")
    sets = c.admin.get(resource_path("apps/v1", "replicasets", ns))["items"]
    assert len(sets) == 1 and not sets[0]["metadata"].get("ownerReferences"), "the ReplicaSet orphaned, not deleted"
    assert len(c.pods(ns)) == 3


def test_delete_namespace(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("doomed")
    c.kubectl("apply", "-f", "-", input=APP % {"ns": ns, "port": 80})
    c.kubectl("create", "configmap", "settings", "--from-literal=a=b", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    wait_for(lambda: c.get("v1", "serviceaccounts", ns, "default"), what="the default service account")
    c.kubectl("delete", "namespace", ns, "--wait=false")
    wait_for(lambda: c.get("v1", "namespaces", "", ns) is None, what="the namespace gone")
    for api, plural in (("apps/v1", "replicasets"), ("v1", "pods"), ("v1", "endpoints"), ("v1", "configmaps"),
                        ("v1", "serviceaccounts")):
        assert not c.admin.get(resource_path(api, plural, ns))["items"], plural


def test_namespace_removed_early_still_leaves_nothing(cluster: Cluster) -> None:
    """Labelling a Terminating namespace makes the API drop it at once; its contents are swept anyway."""
    c, ns = cluster, cluster.namespace("early")
    c.kubectl("apply", "-f", "-", input=APP % {"ns": ns, "port": 80})
    c.kubectl("create", "configmap", "settings", "--from-literal=a=b", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    c.kubectl("delete", "namespace", ns, "--wait=false")
    c.kubectl("label", "namespace", ns, "gone=soon", check=False)
    wait_for(lambda: c.get("v1", "namespaces", "", ns) is None, what="the namespace gone")

    def left() -> list[str]:
        return [f"{plural}/{o['metadata']['name']}" for api, plural in (
            ("apps/v1", "deployments"), ("apps/v1", "replicasets"), ("v1", "pods"), ("v1", "endpoints"),
            ("v1", "configmaps"), ("v1", "services")) for o in c.admin.get(resource_path(api, plural, ns))["items"]]

    wait_for(lambda: not left(), what="nothing left in the removed namespace")
