"""A real agent stream server over TLS (the agent's `LogServer`) and a real pod of two containers in Docker."""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.kubelet.netns import pid_netns, socket_in
from agent.logserver import LogServer
from agent.runtime import labels as L
from agent.runtime.docker import DockerRuntime
from agent.streams.handler import StreamLimits

NODE = "streams-test-node"
NS, POD = "default", "shell"


@dataclass
class Agent:
    server: LogServer
    port: int
    admin: ssl.SSLContext
    node: ssl.SSLContext
    uid: str
    app_id: str
    runtime: DockerRuntime

    def threads(self) -> int:
        return threading.active_count()


def _client_ctx(cert: bytes, key: bytes, tmp: Path, name: str) -> ssl.SSLContext:
    (tmp / f"{name}.crt").write_bytes(cert)
    (tmp / f"{name}.key").write_bytes(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the master pins the agent's cert; not tested here
    ctx.load_cert_chain(str(tmp / f"{name}.crt"), str(tmp / f"{name}.key"))
    return ctx


@pytest.fixture(scope="module")
def agent(docker_client: Any, docker_engine: Any, dev_images: Any, container_labels: dict[str, str],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    from agent import servingcert
    from master import pki

    tmp = tmp_path_factory.mktemp("streams")
    cluster = pki.ensure_pki(tmp, ["localhost"], ["127.0.0.1"])
    cert, key = servingcert.make(NODE, ["127.0.0.1"])
    (tmp / "serving.crt").write_bytes(cert)
    (tmp / "serving.key").write_bytes(key)
    uid = str(uuid.uuid4())
    base = {**container_labels, L.NODE: NODE, L.POD_UID: uid, L.POD_NAME: POD, L.POD_NAMESPACE: NS}
    made = []
    try:
        sandbox = docker_client.containers.run(dev_images.pause, detach=True, name=f"k8s_POD_{POD}_{uid[:8]}",
                                               labels={**base, L.KIND: "sandbox", L.CONTAINER_NAME: "POD"})
        made.append(sandbox)
        app = docker_client.containers.run(
            dev_images.busybox, ["sh", "-c", "httpd -p 127.0.0.1:8080 -h /var/www; exec sleep 86400"],
            detach=True, name=f"k8s_app_{POD}_{uid[:8]}", network_mode=f"container:{sandbox.id}",
            labels={**base, L.KIND: "app", L.CONTAINER_NAME: "app", L.RESTART_COUNT: "0"})
        made.append(app)
        echo = docker_client.containers.run(
            dev_images.busybox, ["cat"], detach=True, stdin_open=True, name=f"k8s_echo_{POD}_{uid[:8]}",
            network_mode=f"container:{sandbox.id}",
            labels={**base, L.KIND: "app", L.CONTAINER_NAME: "echo", L.RESTART_COUNT: "0"})
        made.append(echo)
        done = docker_client.containers.run(
            dev_images.busybox, ["true"], detach=True, name=f"k8s_done_{POD}_{uid[:8]}",
            network_mode=f"container:{sandbox.id}",
            labels={**base, L.KIND: "app", L.CONTAINER_NAME: "done", L.RESTART_COUNT: "0"})
        made.append(done)
        done.wait(timeout=30)
        runtime = DockerRuntime(docker_engine.host, NODE)
        pod = {"metadata": {"name": POD, "namespace": NS, "uid": uid},
               "spec": {"containers": [{"name": "app"}, {"name": "echo"}, {"name": "done"}]}}

        def find(ns: str, name: str) -> dict[str, Any] | None:
            return pod if (ns, name) == (NS, POD) else None

        server = LogServer(runtime, find, "127.0.0.1", 0, str(tmp / "serving.crt"), str(tmp / "serving.key"),
                           str(cluster.ca_cert), lambda pid: socket_in(pid_netns(pid)),
                           StreamLimits(max_streams=24, idle_timeout=3600.0))
        server.start()
        try:
            yield Agent(server, server.port, _client_ctx(*pki.issue_admin_cert(cluster), tmp, "admin"),
                        _client_ctx(*pki.issue_node_cert(cluster, NODE), tmp, "node"), uid, app.id, runtime)
        finally:
            server.stop()
            runtime.close()
    finally:
        for c in made:
            c.remove(force=True)
