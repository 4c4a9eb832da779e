"""Pods run by a real agent in a private Docker engine: env, volumes, limits, init containers, status."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.agent.kubelet.conftest import Cluster, condition, container_status, phase

pytestmark = pytest.mark.integration


def test_env_volumes_and_limits_inside_the_container(cluster: Cluster) -> None:
    ns = cluster.namespace
    cluster.create(f"/api/v1/namespaces/{ns}/configmaps", {
        "metadata": {"name": "cfg-env"}, "data": {"GREETING": "hello", "other": "x", "file.txt": "from configmap"}})
    cluster.create(f"/api/v1/namespaces/{ns}/secrets", {
        "metadata": {"name": "sec-env"}, "data": {"password": base64.b64encode(b"s3cret").decode()}})
    cluster.create_pod({
        "metadata": {"name": "envpod", "labels": {"app": "envpod"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": cluster.images.busybox, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c"], "args": ["echo started $(GREETING); exec sleep 3600"],
                "workingDir": "/tmp",
                "env": [
                    {"name": "PLAIN", "value": "plain-value"},
                    {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg-env", "key": "GREETING"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "password"}}},
                    {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "COMPOSED", "value": "$(PLAIN)-and-$(MY_POD)"},
                ],
                "envFrom": [{"configMapRef": {"name": "cfg-env"}, "prefix": "CM_"}],
                "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m"}},
                "volumeMounts": [
                    {"name": "scratch", "mountPath": "/scratch"},
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "sec", "mountPath": "/etc/sec"},
                    {"name": "host", "mountPath": "/host"},
                ],
            }],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg-env", "items": [{"key": "file.txt", "path": "f.txt"}]}},
                {"name": "sec", "secret": {"secretName": "sec-env"}},
                {"name": "host", "hostPath": {"path": str(cluster.agent.data_dir.parent / "hostpath"),
                                              "type": "DirectoryOrCreate"}},
            ],
        },
    })
    pod = cluster.wait_pod("envpod", lambda p: condition(p, "Ready") == "True", what="Ready")
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["hostIP"] == "127.0.0.1"
    env = dict(line.split("=", 1) for line in cluster.exec("envpod", "main", "env").splitlines() if "=" in line)
    assert env["PLAIN"] == "plain-value"
    assert env["GREETING"] == "hello"
    assert env["PASSWORD"] == "s3cret"
    assert env["MY_POD"] == "envpod"
    assert env["MY_NODE"] == cluster.node
    assert env["APP"] == "envpod"
    assert env["COMPOSED"] == "plain-value-and-envpod"
    assert env["CM_other"] == "x" and env["CM_GREETING"] == "hello"
    assert cluster.exec("envpod", "main", "pwd").strip() == "/tmp"
    assert cluster.exec("envpod", "main", "cat", "/etc/cfg/f.txt") == "from configmap"
    assert cluster.exec("envpod", "main", "cat", "/etc/sec/password") == "s3cret"
    mounts = cluster.exec("envpod", "main", "cat", "/proc/mounts")
    assert any(line.split()[1] == "/etc/sec" and line.split()[0] == "tmpfs" for line in mounts.splitlines()), mounts
    cluster.exec("envpod", "main", "sh", "-c", "echo shared > /scratch/x; echo host > /host/y")
    assert (cluster.agent.data_dir.parent / "hostpath" / "y").read_text() == "host\n"
    cgroup_mem = cluster.exec("envpod", "main", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").strip()
    assert cgroup_mem == str(64 * 1024 * 1024)
    quota = cluster.exec("envpod", "main", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us").strip()
    period = cluster.exec("envpod", "main", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_period_us").strip()
    assert (int(quota), int(period)) == (25000, 100000)
    logs = cluster.kubectl("logs", "envpod").stdout
    assert logs.strip() == "started hello"
    cs = container_status(pod, "main")
    assert cs["ready"] is True and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("docker://")


def test_init_containers_run_first_and_in_order(cluster: Cluster) -> None:
    cluster.create_pod({
        "metadata": {"name": "initpod"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "initContainers": [
                {"name": "first", "image": cluster.images.busybox,
                 "command": ["sh", "-c", "echo first >> /w/order; sleep 1"],
                 "volumeMounts": [{"name": "w", "mountPath": "/w"}]},
                {"name": "second", "image": cluster.images.busybox,
                 "command": ["sh", "-c", "test -f /w/order && echo second >> /w/order"],
                 "volumeMounts": [{"name": "w", "mountPath": "/w"}]},
            ],
            "containers": [{"name": "main", "image": cluster.images.busybox,
                            "command": ["sh", "-c", "echo main >> /w/order; exec sleep 3600"],
                            "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
            "volumes": [{"name": "w", "emptyDir": {}}],
        },
    })
    pod = cluster.wait_pod("initpod", phase("Running"), what="Running")
    assert cluster.exec("initpod", "main", "cat", "/w/order").split() == ["first", "second", "main"]
    for name in ("first", "second"):
        cs = container_status(pod, name, init=True)
        assert cs["state"]["terminated"]["reason"] == "Completed", cs
        assert cs["ready"] is True
    assert condition(pod, "Initialized") == "True"


def _restart_count(pod: dict[str, Any], name: str) -> int:
    return int(container_status(pod, name).get("restartCount", 0))
