"""Service environment variables inside real containers: a real master, a private Docker engine, `pikube agent`.

The agent runs as a node identity, so this also shows the node authoriser lets
it list and watch services.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.agent.kubelet.conftest import Cluster, condition
from tests.agent.kubelet.conftest import cluster as cluster  # the fixture, used outside its directory

pytestmark = pytest.mark.integration
Obj = dict[str, Any]


def _service(cluster: Cluster, ns: str, body: Obj) -> Obj:
    return cluster.create(f"/api/v1/namespaces/{ns}/services", body)


def _sleeper(cluster: Cluster, name: str, ns: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"terminationGracePeriodSeconds": 1, **spec,
                     "containers": [{"name": "main", "image": cluster.images.busybox,
                                     "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}


def _ready(cluster: Cluster, name: str, ns: str, timeout: float = 30.0) -> Obj:
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        pod = cluster.pod(name, ns)
        if pod is not None and condition(pod, "Ready") == "True":
            return pod
        time.sleep(0.2)
    raise AssertionError(f"pod {ns}/{name} not Ready: {(pod or {}).get('status')}\n{cluster.agent.log_tail()}")


def _env(cluster: Cluster, pod: str) -> dict[str, str]:
    out = cluster.exec(pod, "main", "env")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_containers_get_service_variables(cluster: Cluster) -> None:
    ns = cluster.namespace
    master = cluster.session.get(cluster.url("/api/v1/namespaces/default/services/kubernetes")).json()
    master_ip = master["spec"]["clusterIP"]
    web = _service(cluster, ns, {"metadata": {"name": "web-svc"}, "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080},
                  {"name": "stats", "port": 9125, "protocol": "UDP"}]}})
    web_ip = web["spec"]["clusterIP"]
    _service(cluster, ns, {"metadata": {"name": "quiet-svc"}, "spec": {
        "clusterIP": "None", "selector": {"app": "q"}, "ports": [{"port": 80}]}})
    _service(cluster, ns, {"metadata": {"name": "far-svc"}, "spec": {
        "type": "ExternalName", "externalName": "example.com"}})
    cluster.create_pod({
        "metadata": {"name": "svcenv"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": cluster.images.busybox, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c"],
                "args": ["echo url=$(WEB_URL) api=$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT); "
                         "exec sleep 3600"],
                "env": [{"name": "WEB_URL", "value": "http://$(WEB_SVC_SERVICE_HOST):$(WEB_SVC_SERVICE_PORT_HTTP)"},
                        {"name": "WEB_SVC_SERVICE_PORT_STATS", "value": "mine"}],
            }],
        },
    })
    _ready(cluster, "svcenv", ns)
    env = _env(cluster, "svcenv")
    assert env["KUBERNETES_SERVICE_HOST"] == master_ip
    assert env["KUBERNETES_SERVICE_PORT"] == "443" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == f"tcp://{master_ip}:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == master_ip
    assert env["WEB_SVC_SERVICE_HOST"] == web_ip and env["WEB_SVC_SERVICE_PORT"] == "80"
    assert env["WEB_SVC_SERVICE_PORT_HTTP"] == "80"
    assert env["WEB_SVC_SERVICE_PORT_STATS"] == "mine"  # the container's own variable wins
    assert env["WEB_SVC_PORT"] == f"tcp://{web_ip}:80"
    assert env["WEB_SVC_PORT_9125_UDP"] == f"udp://{web_ip}:9125"
    assert env["WEB_SVC_PORT_9125_UDP_PROTO"] == "udp" and env["WEB_SVC_PORT_9125_UDP_PORT"] == "9125"
    assert env["WEB_SVC_PORT_80_TCP_ADDR"] == web_ip
    assert env["WEB_URL"] == f"http://{web_ip}:80"
    assert not [k for k in env if k.startswith(("QUIET_SVC_", "FAR_SVC_"))]  # headless, ExternalName
    logs = cluster.kubectl("logs", "svcenv").stdout
    assert logs.strip() == f"url=http://{web_ip}:80 api={master_ip}:443"  # args expand service variables too

    # enableServiceLinks: false keeps only the master service's variables.
    cluster.create_pod(_sleeper(cluster, "nolinks", ns, enableServiceLinks=False))
    _ready(cluster, "nolinks", ns)
    env = _env(cluster, "nolinks")
    hosts = sorted(k for k in env if k.endswith("_SERVICE_HOST"))
    assert hosts == ["KUBERNETES_SERVICE_HOST"] and env["KUBERNETES_SERVICE_HOST"] == master_ip

    # Another namespace sees its own services and the master's, not default's.
    other = "svc-env-other"
    cluster.create("/api/v1/namespaces", {"metadata": {"name": other}})
    mine = _service(cluster, other, {"metadata": {"name": "web-svc"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 8000}]}})
    cluster.create_pod(_sleeper(cluster, "elsewhere", other))
    _ready(cluster, "elsewhere", other)
    env = _env(cluster, "elsewhere")
    assert env["WEB_SVC_SERVICE_HOST"] == mine["spec"]["clusterIP"] != web_ip
    assert env["WEB_SVC_SERVICE_PORT"] == "8000" and "WEB_SVC_SERVICE_PORT_HTTP" not in env
    assert env["KUBERNETES_SERVICE_HOST"] == master_ip
