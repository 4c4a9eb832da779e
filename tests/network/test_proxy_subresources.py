"""`kubectl proxy` + an HTTP client to a pod and a service on a worker board, through the proxy subresources.

The Kubernetes bootcamp's `curl localhost:8001/api/v1/namespaces/default/pods/$POD:8080/proxy/`, for real:
a master in the root namespace (which has no route to the pod network: the
lab checks it), two boards with real agents, an httpd pod on board b2. The
master reaches the pod only through b2's agent (`/podProxy/…`), so every
answer here crossed master → agent → pod. kubectl 1.20 and 1.33 each run
`kubectl proxy`; the Python client uses the subresource directly.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pikube.dev.localmaster import free_port
from tests.master.conftest import kubectl_path
from tests.network.conftest import HTTP_PORT, NetCluster, assert_root_untouched, cluster_up, wait_for

pytestmark = pytest.mark.integration
PODS = "/api/v1/namespaces/default/pods"
SERVICES = "/api/v1/namespaces/default/services"
WS_PORT = 9000


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
        dev_images: Any) -> Iterator[NetCluster]:
    with cluster_up("host-gw", tmp_path_factory.mktemp("proxy-lab"), docker_engine.host, docker_client, dev_images,
                    board_names=("b1", "b2")) as c:
        c.create_pod("web-b2", "b2", {"app": "web"}, ports=[{"containerPort": HTTP_PORT, "name": "http"}])
        c.create_pod("plain-b2", "b2", {"app": "plain"})  # declares no port: its proxy goes to port 80
        # A raw "upgrade" server: answers any request with a 101, then echoes everything (the request head too).
        switch = "printf 'HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n'"
        c.create_pod("ws-b2", "b2", {"app": "ws"}, command=["nc", "-ll", "-p", str(WS_PORT), "-e", "sh", "-c",
                                                             f"{switch}; exec cat"], ready_port=WS_PORT)
        c.service("web", {"app": "web"}, 80, HTTP_PORT)
        c.wait_ready("web-b2", "plain-b2", "ws-b2")
        wait_for("the service's endpoint", lambda: c.endpoint_ips("web"), 30)
        yield c


class KubectlProxy:
    """`kubectl proxy` on a free loopback port, stopped at the end."""

    def __init__(self, c: NetCluster, which: str) -> None:
        self.port = free_port()
        env = {**os.environ, "HOME": str(c.workdir)}
        env.pop("KUBECONFIG", None)
        self.proc = subprocess.Popen([kubectl_path(which), "--kubeconfig", str(c.master.kubeconfig), "proxy",
                                      f"--port={self.port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "Starting to serve on 127.0.0.1:PORT"
        assert f":{self.port}" in line, line
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=20, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(params=["old", "new"])
def proxy(request: pytest.FixtureRequest, lab: NetCluster) -> Iterator[KubectlProxy]:
    p = KubectlProxy(lab, str(request.param))
    yield p
    p.stop()


def test_the_bootcamp_curl_reaches_a_pod_on_a_worker_board(proxy: KubectlProxy, lab: NetCluster) -> None:
    resp = proxy.get(f"{PODS}/web-b2:{HTTP_PORT}/proxy/")
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == "web-b2"  # the pod's httpd serves its hostname
    # No port: the first declared containerPort (8080); the sub-path and the query go along.
    resp = proxy.get(f"{PODS}/web-b2/proxy/index.html", params={"x": "1"})
    assert resp.status_code == 200 and resp.text.strip() == "web-b2"
    # The pod's own answers pass unchanged, a 404 included (not a Status of the master's).
    resp = proxy.get(f"{PODS}/web-b2:{HTTP_PORT}/proxy/no-such-file")
    assert resp.status_code == 404 and "Status" not in resp.text
    # No sub-path: redirected into the proxy, as Kubernetes does.
    resp = proxy.get(f"{PODS}/web-b2:{HTTP_PORT}/proxy", allow_redirects=False)
    assert resp.status_code == 301
    assert resp.headers["Location"] == f"{PODS}/web-b2:{HTTP_PORT}/proxy/"


def test_the_services_form_reaches_the_pod_behind_the_service(proxy: KubectlProxy, lab: NetCluster) -> None:
    for name in ("web", "web:80", "web:main", "http:web:80", "http:web:"):
        resp = proxy.get(f"{SERVICES}/{name}/proxy/")
        assert resp.status_code == 200, (name, resp.text)
        assert resp.text.strip() == "web-b2", name


def test_bad_targets_get_a_clear_status(proxy: KubectlProxy, lab: NetCluster) -> None:
    cases = [
        (f"{PODS}/plain-b2/proxy/", 503, re.compile(r"error trying to reach pod: dial tcp [0-9.]+:80: ")),
        (f"{PODS}/web-b2:9999/proxy/", 503, re.compile(r"error trying to reach pod: dial tcp [0-9.]+:9999: ")),
        (f"{PODS}/nobody:80/proxy/", 404, re.compile(r'pods "nobody" not found')),
        (f"{SERVICES}/web:81/proxy/", 503, re.compile(r'no service port 81 found for service "web"')),
        (f"{SERVICES}/nothing/proxy/", 404, re.compile(r'services "nothing" not found')),
        (f"{PODS}/ftp:web-b2:80/proxy/", 400, re.compile(r'invalid request "ftp:web-b2:80"')),
    ]
    for path, code, message in cases:
        resp = proxy.get(path)
        assert resp.status_code == code, (path, resp.text)
        status = resp.json()
        assert status["kind"] == "Status" and message.search(status["message"]), (path, status)


def test_an_upgrade_through_kubectl_proxy_reaches_the_pod(proxy: KubectlProxy, lab: NetCluster) -> None:
    """A WebSocket-like upgrade: kubectl proxy → master → b2's agent → the pod, and the pod's bytes back."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as s:
        s.sendall(f"GET {PODS}/ws-b2:{WS_PORT}/proxy/socket HTTP/1.1\r\nHost: localhost\r\n"
                  "Connection: Upgrade\r\nUpgrade: echo\r\n\r\n".encode())
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(65536)
        assert got.startswith(b"HTTP/1.1 101 Switching Protocols"), got
        marker = b"through four hops and back"
        s.sendall(marker)
        while marker not in got:
            data = s.recv(65536)
            assert data, got
            got += data
        assert b"GET /socket HTTP/1.1" in got  # the pod echoed the request head the agent sent it


def test_node_proxy_reaches_the_agent_itself(lab: NetCluster) -> None:
    node = lab.node("b2")
    resp = lab.session.get(f"{lab.url}/api/v1/nodes/{node}/proxy/containerLogs/default/web-b2/main", timeout=20)
    assert resp.status_code == 200, resp.text  # the agent's own log endpoint, reached through the master
    resp = lab.session.get(f"{lab.url}/api/v1/nodes/{node}/proxy/nothing-here", timeout=20)
    assert resp.status_code == 404 and "containerLogs" in resp.text  # the agent's own 404
    # An agent forwards only to pods of its own board: b1's agent does not know web-b2 (on b2).
    resp = lab.session.get(f"{lab.url}/api/v1/nodes/{lab.node('b1')}/proxy/podProxy/default/web-b2/http/"
                           f"{HTTP_PORT}/", timeout=20)
    assert resp.status_code == 404, resp.text
    assert 'pod "web-b2" in namespace "default" is not on this node' in resp.json()["message"]


def test_the_python_client_and_a_post(lab: NetCluster) -> None:
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(lab.master.kubeconfig)))
    text = core.connect_get_namespaced_pod_proxy_with_path(f"web-b2:{HTTP_PORT}", "default", "index.html")
    assert str(text).strip() == "web-b2"
    text = core.connect_get_namespaced_service_proxy_with_path("web:80", "default", "index.html")
    assert str(text).strip() == "web-b2"
    # A POST with a body goes through (busybox httpd answers a POST to a static file with an error of its own).
    resp = lab.session.post(f"{lab.url}{PODS}/web-b2:{HTTP_PORT}/proxy/index.html", data=b"x" * 10000, timeout=20)
    assert resp.status_code < 500 or "Status" not in resp.text, resp.text
    # A body beyond the master's limit is refused before a byte of it is read (or sent on).
    conn = http.client.HTTPSConnection(lab.url.split("//")[1].split(":")[0], int(lab.url.rsplit(":", 1)[1]),
                                       context=_admin_context(lab), timeout=20)
    conn.putrequest("POST", f"{PODS}/web-b2:{HTTP_PORT}/proxy/")
    conn.putheader("Content-Length", str(4 * 1024 * 1024))
    conn.endheaders()
    too_big = conn.getresponse()
    assert too_big.status == 413 and json.loads(too_big.read())["kind"] == "Status"
    conn.close()
    assert_root_untouched()  # and the master never needed a route to the pod network


def _admin_context(lab: NetCluster) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(lab.master.ca))
    cert = lab.session.cert
    assert isinstance(cert, tuple)
    ctx.load_cert_chain(*cert)
    return ctx
