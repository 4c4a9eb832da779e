"""Pods that cannot start say why, as a kubelet says it, and start once the cause is gone; the agent's log
gets one line per cause, not one per retry."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.agent.kubelet.conftest import Cluster, condition, container_status

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
NS = "default"


def _pod(cluster: Cluster, name: str, **container: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "main", "image": cluster.images.busybox, "command": ["sleep", "3600"], **container}]}}


def _waiting(pod: Obj) -> Obj:
    return dict(container_status(pod, "main").get("state", {}).get("waiting") or {})


def _events(cluster: Cluster, pod: str) -> list[Obj]:
    items = cluster.session.get(cluster.url(f"/api/v1/namespaces/{NS}/events")).json().get("items") or []
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == pod]


def _wait(what: str, check: Callable[[], bool], cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s\nagent log:\n{cluster.agent.log_tail()}")


def _lines_about(cluster: Cluster, names: list[str], start: int = 0) -> list[str]:
    lines = cluster.agent.log_path.read_text().splitlines()[start:]
    return [line for line in lines if any(f"/{n}" in line for n in names)]


def test_missing_config_maps_secrets_and_keys_say_why_then_the_pods_start(cluster: Cluster) -> None:
    tag = secrets.token_hex(3)
    cm_late, cm_partial, sec_late, vol_late = f"late-{tag}", f"partial-{tag}", f"sec-{tag}", f"vol-{tag}"
    cluster.create(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": cm_partial}, "data": {"a": "1"}})
    env_pods = {
        f"p-cm-{tag}": ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": cm_late, "key": "k"}}}]},
                        f'configmap "{cm_late}" not found'),
        f"p-key-{tag}": ({"env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": cm_partial, "key": "k"}}}]},
                         f"couldn't find key k in ConfigMap {NS}/{cm_partial}"),
        f"p-sec-{tag}": ({"envFrom": [{"secretRef": {"name": sec_late}}]}, f'secret "{sec_late}" not found'),
    }
    for name, (container, _) in env_pods.items():
        cluster.create_pod(_pod(cluster, name, **container))
    vol_pod = f"p-vol-{tag}"
    manifest = _pod(cluster, vol_pod, volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])
    manifest["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": vol_late}}]
    cluster.create_pod(manifest)
    names = [*env_pods, vol_pod]

    for name, (_, message) in env_pods.items():
        pod = cluster.wait_pod(name, lambda p: _waiting(p).get("reason") == "CreateContainerConfigError",
                               what="CreateContainerConfigError")
        assert _waiting(pod)["message"] == message
        assert pod["status"]["phase"] == "Pending" and condition(pod, "Ready") == "False"
    mount_failed = f'MountVolume.SetUp failed for volume "cfg" : configmap "{vol_late}" not found'
    _wait("a FailedMount event", lambda: any(e["reason"] == "FailedMount" and e["message"] == mount_failed
                                             and e["type"] == "Warning" for e in _events(cluster, vol_pod)), cluster)
    assert _waiting(cluster.pod(vol_pod) or {}).get("reason") == "ContainerCreating"

    # Retried with back-off (1 s, 2 s, 4 s ...), each retry bumping its event's count, and logged once.
    failures = {**{n: ("Failed", f"Error: {m}") for n, (_, m) in env_pods.items()},
                vol_pod: ("FailedMount", mount_failed)}

    def count(name: str) -> int:
        reason, message = failures[name]
        return max([int(e.get("count") or 1) for e in _events(cluster, name)
                    if e["reason"] == reason and e["message"] == message] or [0])

    mark = len(cluster.agent.log_path.read_text().splitlines())
    _wait("four attempts of each pod", lambda: all(count(n) >= 4 for n in names), cluster)
    assert _lines_about(cluster, names, mark) == [], "a retry with the same cause logged again"
    for name in names:
        logged = _lines_about(cluster, [name])
        assert len(logged) == 1 and "WARNING" in logged[0], logged

    cluster.create(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": cm_late}, "data": {"k": "v"}})
    resp = cluster.session.patch(cluster.url(f"/api/v1/namespaces/{NS}/configmaps/{cm_partial}"),
                                 data=json.dumps({"data": {"k": "v"}}),
                                 headers={"Content-Type": "application/merge-patch+json"})
    assert resp.ok, resp.text
    cluster.create(f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": sec_late}, "stringData": {"S": "v"}})
    cluster.create(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": vol_late}, "data": {"f": "file"}})
    for name in names:
        cluster.wait_pod(name, lambda p: condition(p, "Ready") == "True", what="Ready after the object was made")
    assert cluster.exec(f"p-key-{tag}", "main", "sh", "-c", 'echo -n "$K"') == "v"
    assert cluster.exec(f"p-sec-{tag}", "main", "sh", "-c", 'echo -n "$S"') == "v"
    assert cluster.exec(vol_pod, "main", "cat", "/cfg/f") == "file"
    for name in names:  # one line when it failed, one when it started
        assert len(_lines_about(cluster, [name])) == 2, _lines_about(cluster, [name])
    assert "Traceback" not in cluster.agent.log_path.read_text()


def test_a_value_utf8_cannot_encode_is_refused_or_used_as_go_would(cluster: Cluster) -> None:
    tag = secrets.token_hex(3)
    body = json.dumps({"metadata": {"name": f"sur-{tag}"}, "data": {"k": "\ud800x"}})  # \ud800: a lone surrogate
    resp = cluster.session.post(cluster.url(f"/api/v1/namespaces/{NS}/configmaps"), data=body,
                                headers={"Content-Type": "application/json"})
    if resp.status_code != 201:  # refused at admission: nothing un-encodable ever reaches an agent
        assert resp.status_code in (400, 422), resp.text
        return
    name = f"p-sur-{tag}"
    manifest = _pod(cluster, name, envFrom=[{"configMapRef": {"name": f"sur-{tag}"}}],
                    volumeMounts=[{"name": "cfg", "mountPath": "/cfg"}])
    manifest["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": f"sur-{tag}"}}]
    cluster.create_pod(manifest)
    cluster.wait_pod(name, lambda p: condition(p, "Ready") == "True", what="Ready")
    # U+FFFD in its place, as a Go API server and kubelet would have decoded it.
    assert cluster.exec(name, "main", "cat", "/cfg/k") == "\ufffdx"
    assert cluster.exec(name, "main", "sh", "-c", 'echo -n "$k"') == "\ufffdx"
    assert "Traceback" not in cluster.agent.log_path.read_text()


def test_configs_docker_refuses_or_cannot_run_say_so_in_dockers_words(cluster: Cluster) -> None:
    tag = secrets.token_hex(3)
    bad_dir, bad_cmd, bad_image = f"p-wd-{tag}", f"p-cmd-{tag}", f"p-img-{tag}"
    cluster.create_pod(_pod(cluster, bad_dir, workingDir="relative"))
    cluster.create_pod(_pod(cluster, bad_cmd, command=["/nonexistent"]))
    cluster.create_pod(_pod(cluster, bad_image, image="Bad/UPPER:x"))

    pod = cluster.wait_pod(bad_dir, lambda p: _waiting(p).get("reason") == "CreateContainerError",
                           what="CreateContainerError")
    docker_says = "the working directory 'relative' is invalid, it needs to be an absolute path"
    assert _waiting(pod)["message"] == docker_says
    _wait("its Failed event", lambda: any(e["reason"] == "Failed" and e["message"] == f"Error: {docker_says}"
                                          for e in _events(cluster, bad_dir)), cluster)

    seen: set[str] = set()

    def run_failed(p: Obj) -> bool:
        seen.add(str(_waiting(p).get("reason")))
        return "RunContainerError" in seen and "CrashLoopBackOff" in seen

    pod = cluster.wait_pod(bad_cmd, run_failed, what="RunContainerError, then CrashLoopBackOff")
    last = container_status(pod, "main")["lastState"]["terminated"]
    assert last["reason"] == "ContainerCannotRun" and "/nonexistent" in last["message"], last
    _wait("its Failed event", lambda: any(e["reason"] == "Failed" and
                                          e["message"].startswith('Error: failed to start container "main": ')
                                          for e in _events(cluster, bad_cmd)), cluster)

    pod = cluster.wait_pod(bad_image, lambda p: _waiting(p).get("reason") == "InvalidImageName",
                           what="InvalidImageName")
    assert _waiting(pod)["message"] == ('Failed to apply default image tag "Bad/UPPER:x": couldn\'t parse image '
                                        'reference "Bad/UPPER:x": invalid reference format: repository name must '
                                        'be lowercase')
    _wait("its InspectFailed event", lambda: any(e["reason"] == "InspectFailed"
                                                 for e in _events(cluster, bad_image)), cluster)
    for name in (bad_dir, bad_cmd, bad_image):
        logged = _lines_about(cluster, [name])
        assert len(logged) == 1, logged
    assert "Traceback" not in cluster.agent.log_path.read_text()
