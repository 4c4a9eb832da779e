"""kubectl exec through the master's relay to a real agent on a worker board (the master in the root namespace).

What the master adds end to end: the relay of SPDY (kubectl 1.20, and 1.33 with
`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`), WebSocket (1.33, the Python client)
and the port-forward tunnel (1.33) to the agent, output, stdin and exit codes
through it, and its own threads back where they were after many streams. The
protocols themselves are the agent's (tests/agent/streams/, part A's kubectl
end-to-end tests).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.master.conftest import kubectl_path
from tests.master.test_stream_disconnect import held, settled_thread_count, thread_count
from tests.network.conftest import HTTP_PORT, NetCluster, cluster_up, wait_for

pytestmark = pytest.mark.integration
SPDY_ONLY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
        dev_images: Any) -> Iterator[NetCluster]:
    with cluster_up("host-gw", tmp_path_factory.mktemp("exec-lab"), docker_engine.host, docker_client, dev_images,
                    board_names=("b1", "b2")) as c:
        c.create_pod("sh-b2", "b2", {"app": "sh"})
        c.wait_ready("sh-b2")
        yield c


def run_kubectl(c: NetCluster, which: str, *args: str, input: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HOME": str(c.workdir), **(env or {})}
    full_env.pop("KUBECONFIG", None)
    return subprocess.run([kubectl_path(which), "--kubeconfig", str(c.master.kubeconfig), *args], input=input,
                          capture_output=True, text=True, timeout=60, env=full_env)


CLIENTS = [("old", {}), ("new", {}), ("new", SPDY_ONLY)]
IDS = ["1.20-spdy", "1.33-websocket", "1.33-spdy"]


@pytest.mark.parametrize(("which", "env"), CLIENTS, ids=IDS)
def test_exec_output_and_stdin_through_the_master(lab: NetCluster, which: str, env: dict[str, str]) -> None:
    proc = run_kubectl(lab, which, "exec", "sh-b2", "--", "hostname", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sh-b2"
    text = "line one\nline two\n" * 500
    proc = run_kubectl(lab, which, "exec", "-i", "sh-b2", "--", "cat", input=text, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == text


@pytest.mark.parametrize(("which", "env"), CLIENTS, ids=IDS)
def test_exec_exit_code_through_the_master(lab: NetCluster, which: str, env: dict[str, str]) -> None:
    proc = run_kubectl(lab, which, "exec", "sh-b2", "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env)
    assert proc.stdout == "out\n" and "err" in proc.stderr
    assert proc.returncode == 3, (proc.returncode, proc.stderr)


def test_the_python_clients_exec_through_the_master(lab: NetCluster) -> None:
    from kubernetes import client, config
    from kubernetes.stream import stream

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(lab.master.kubeconfig)))
    out = stream(core.connect_get_namespaced_pod_exec, "sh-b2", "default", command=["hostname"], stderr=True,
                 stdin=False, stdout=True, tty=False)
    assert out.strip() == "sh-b2"
    resp = stream(core.connect_get_namespaced_pod_exec, "sh-b2", "default", command=["sh", "-c", "exit 5"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=20)
    assert resp.returncode == 5


def test_the_masters_threads_come_back_after_many_execs(lab: NetCluster) -> None:
    """Every connection has a thread of its own, so the agents' own connections coming and going move the
    count; what must come back is the count of threads beyond the open connections (a stream that kept its
    thread after both ends left would add one), and no connection may stay half-closed on the master's side."""
    pid, port = lab.master.proc.pid, lab.master.port

    def beyond_connections() -> int:
        return thread_count(pid) - len(held(port))

    def one(i: int) -> None:
        env = SPDY_ONLY if i % 2 else {}
        proc = run_kubectl(lab, "new", "exec", "sh-b2", "--", "echo", str(i), env=env)
        assert proc.returncode == 0 and proc.stdout.strip() == str(i), proc.stderr

    one(-1)
    settled_thread_count(pid)
    baseline = beyond_connections()
    for i in range(30):
        one(i)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(one, range(10)))
    wait_for("the master's threads beyond its connections back at the baseline",
             lambda: beyond_connections() <= baseline and "08" not in held(port).values(), 10)


@pytest.mark.parametrize("which", ["old", "new"], ids=["1.20-spdy", "1.33-websocket-tunnel"])
def test_port_forward_through_the_master(lab: NetCluster, which: str) -> None:
    import requests

    from pikube.dev.localmaster import free_port

    local = free_port()
    env = {**os.environ, "HOME": str(lab.workdir)}
    env.pop("KUBECONFIG", None)
    proc = subprocess.Popen([kubectl_path(which), "--kubeconfig", str(lab.master.kubeconfig), "port-forward",
                             "pod/sh-b2", f"{local}:{HTTP_PORT}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:LOCAL -> 8080"
        assert f"127.0.0.1:{local}" in line, line
        for _ in range(3):  # each request is a new connection: a new stream pair inside the one upgrade
            resp = requests.get(f"http://127.0.0.1:{local}/", timeout=20)
            assert resp.status_code == 200 and resp.text.strip() == "sh-b2"
    finally:
        proc.terminate()
        proc.wait(10)
