"""Deployments driven with real kubectl against a real master and simulated boards.

create → scale up → scale down → `set image` (maxUnavailable never exceeded, watched
event by event) → `rollout history` → `rollout undo`; pause/resume/restart; Recreate.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pikube.sim.api import resource_path
from tests.master.conftest import kubectl
from tests.master.controllers.conftest import Cluster, wait_for

pytestmark = pytest.mark.integration


def ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def images(c: Cluster, ns: str) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in c.pods(ns, "app=web")
            if not p["metadata"].get("deletionTimestamp")}


def ready_count(c: Cluster, ns: str) -> int:
    return sum(1 for p in c.pods(ns, "app=web") if ready(p))


class ReadyWatcher:
    """Follows every pod event of a namespace and records the fewest ready pods ever seen."""

    def __init__(self, c: Cluster, ns: str) -> None:
        self.c, self.ns = c, ns
        self.stop = threading.Event()
        self.pods: dict[str, dict[str, Any]] = {}
        self.minimum: int | None = None
        self.events = 0
        listing = c.admin.get(resource_path("v1", "pods", ns), {"labelSelector": "app=web"})
        for p in listing["items"]:
            self.pods[p["metadata"]["uid"]] = p
        self.rv = listing["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        params = {"labelSelector": "app=web", "resourceVersion": self.rv, "timeoutSeconds": "120"}
        for event in self.c.admin.watch(resource_path("v1", "pods", self.ns), params, self.stop):
            obj = event["object"]
            if event["type"] == "DELETED":
                self.pods.pop(obj["metadata"]["uid"], None)
            else:
                self.pods[obj["metadata"]["uid"]] = obj
            self.events += 1
            n = sum(1 for p in self.pods.values() if ready(p))
            self.minimum = n if self.minimum is None else min(self.minimum, n)

    def finish(self) -> int | None:
        self.stop.set()
        return self.minimum


def test_create_scale_set_image_undo(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("deploy")
    c.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    assert ready_count(c, ns) == 3
    nodes = {p["spec"]["nodeName"] for p in c.pods(ns, "app=web")}
    assert len(nodes) == 3, "three replicas of one owner spread over three boards"

    c.kubectl("scale", "deployment/web", "--replicas=6", "-n", ns)
    wait_for(lambda: ready_count(c, ns) == 6, what="6 ready pods")
    c.kubectl("scale", "deployment/web", "--replicas=4", "-n", ns)
    wait_for(lambda: len(c.pods(ns, "app=web")) == 4 and ready_count(c, ns) == 4, what="4 pods")
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=30s")

    c.kubectl("patch", "deployment/web", "-n", ns, "-p",
              '{"spec":{"strategy":{"rollingUpdate":{"maxUnavailable":1,"maxSurge":1}}}}')
    watcher = ReadyWatcher(c, ns)
    c.kubectl("set", "image", "deployment/web", "nginx=nginx:1.26", "-n", ns)
    out = c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    assert "successfully rolled out" in out.stdout
    wait_for(lambda: len(c.pods(ns, "app=web")) == 4, what="old pods gone")
    minimum = watcher.finish()
    assert watcher.events > 8
    assert minimum is not None and minimum >= 3, f"maxUnavailable=1 of 4 replicas, but only {minimum} were ready"
    assert images(c, ns) == {"nginx:1.26"}

    history = c.kubectl("rollout", "history", "deployment/web", "-n", ns).stdout
    assert "1 " in history and "2 " in history, history

    c.kubectl("rollout", "undo", "deployment/web", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    wait_for(lambda: images(c, ns) == {"nginx:1.25"} and len(c.pods(ns, "app=web")) == 4, what="undo done")
    d = c.get("apps/v1", "deployments", ns, "web")
    assert d is not None
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    sets = c.admin.get(resource_path("apps/v1", "replicasets", ns))["items"]
    assert len(sets) == 2, "undo reuses the first ReplicaSet"
    conds = {x["type"]: x for x in d["status"]["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    events = c.kubectl("get", "events", "-n", ns, "--field-selector", "reason=ScalingReplicaSet").stdout
    assert "Scaled up replica set web-" in events


def test_pause_resume_restart(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("pause")
    c.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=2", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    c.kubectl("rollout", "pause", "deployment/web", "-n", ns)
    c.kubectl("set", "image", "deployment/web", "nginx=nginx:1.26", "-n", ns)
    wait_for(lambda: (c.get("apps/v1", "deployments", ns, "web") or {}).get("status", {}).get(
        "observedGeneration") == 3, what="paused deployment observed")
    assert images(c, ns) == {"nginx:1.25"}, "a paused deployment does not roll"
    d = c.get("apps/v1", "deployments", ns, "web") or {}
    assert {x["type"]: x for x in d["status"]["conditions"]}["Progressing"]["reason"] == "DeploymentPaused"
    c.kubectl("rollout", "resume", "deployment/web", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    wait_for(lambda: images(c, ns) == {"nginx:1.26"}, what="resumed rollout")
    before = {p["metadata"]["name"] for p in c.pods(ns, "app=web")}
    c.kubectl("rollout", "restart", "deployment/web", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    wait_for(lambda: len(c.pods(ns, "app=web")) == 2 and not before & {p["metadata"]["name"]
                                                                         for p in c.pods(ns, "app=web")},
             what="restart replaced every pod")


def test_recreate_strategy(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("recreate")
    c.kubectl("create", "deployment", "web", "--image=nginx:1.25", "--replicas=3", "-n", ns)
    c.kubectl("patch", "deployment/web", "-n", ns, "--type=json", "-p",
              '[{"op":"replace","path":"/spec/strategy","value":{"type":"Recreate"}}]')
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    watcher = ReadyWatcher(c, ns)
    c.kubectl("set", "image", "deployment/web", "nginx=nginx:1.26", "-n", ns)
    c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    wait_for(lambda: images(c, ns) == {"nginx:1.26"} and ready_count(c, ns) == 3, what="recreated")
    assert watcher.finish() == 0, "Recreate stops every old pod before starting new ones"


def test_rollout_with_kubectl_1_20(cluster: Cluster) -> None:
    """The oldest kubectl we support drives the same rollout: status, history, undo."""
    c, ns = cluster, cluster.namespace("old-kubectl")

    def old(*args: str) -> str:
        return kubectl(c.master, "old", *args, "-n", ns).stdout

    old("create", "deployment", "web", "--image=nginx:1.25")
    old("rollout", "status", "deployment/web", "--timeout=60s")
    old("set", "image", "deployment/web", "nginx=nginx:1.26")
    assert "successfully rolled out" in old("rollout", "status", "deployment/web", "--timeout=60s")
    assert "2 " in old("rollout", "history", "deployment/web")
    old("rollout", "undo", "deployment/web")
    old("rollout", "status", "deployment/web", "--timeout=60s")
    wait_for(lambda: images(c, ns) == {"nginx:1.25"}, what="undo with kubectl 1.20")


def test_progress_deadline(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("stuck")
    c.kubectl("apply", "-f", "-", input=f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 2
  progressDeadlineSeconds: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}, annotations: {{sim.pikube.io/never-ready: "true"}}}}
    spec: {{containers: [{{name: web, image: "nginx:1"}}]}}
""")
    out = c.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=30s", check=False)
    assert out.returncode != 0
    assert 'deployment "web" exceeded its progress deadline' in out.stderr
    d = c.get("apps/v1", "deployments", ns, "web") or {}
    conds = {x["type"]: x for x in d["status"]["conditions"]}
    assert conds["Progressing"]["status"] == "False" and conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    assert conds["Available"]["status"] == "False"


def test_replicaset_adopts_and_releases(cluster: Cluster) -> None:
    c, ns = cluster, cluster.namespace("adopt")
    c.admin.create(resource_path("v1", "pods", ns), {
        "metadata": {"name": "stray", "labels": {"app": "rs"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}})
    c.kubectl("apply", "-f", "-", input=f"""
apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: rs, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: rs}}}}
  template:
    metadata: {{labels: {{app: rs}}}}
    spec: {{containers: [{{name: c, image: "nginx:1"}}]}}
""")
    wait_for(lambda: len(c.pods(ns, "app=rs")) == 3, what="three pods")
    stray = c.get("v1", "pods", ns, "stray") or {}
    assert stray["metadata"]["ownerReferences"][0]["name"] == "rs", "the matching orphan was adopted"
    c.kubectl("label", "pod", "stray", "app=other", "--overwrite", "-n", ns)
    wait_for(lambda: len(c.pods(ns, "app=rs")) == 3 and not (c.get("v1", "pods", ns, "stray") or {}).get(
        "metadata", {}).get("ownerReferences"), what="the relabelled pod released and replaced")
    c.kubectl("scale", "replicaset/rs", "--replicas=1", "-n", ns)
    wait_for(lambda: len(c.pods(ns, "app=rs")) == 1, what="scaled down to one")
    assert c.get("v1", "pods", ns, "stray") is not None, "a released pod is no longer the ReplicaSet's"
