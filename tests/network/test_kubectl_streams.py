"""Real kubectl (1.20: SPDY; 1.33: WebSocket, and SPDY with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false) and the Python
client exec, cp and port-forward into a pod on a worker board: kubectl → master → the board's agent → Docker.

The master runs in the root namespace with no route to the pod network, so
everything here crossed the master's relay and the agent's stream endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pikube.dev.localmaster import free_port
from tests.master.conftest import kubectl_path
from tests.network.conftest import HTTP_PORT, NetCluster, cluster_up, wait_for

pytestmark = pytest.mark.integration
BIG = 50 * 1024 * 1024
NO_WEBSOCKETS = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
MODES = {"1.20-spdy": ("old", {}), "1.33-websocket": ("new", {}), "1.33-spdy": ("new", NO_WEBSOCKETS)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, docker_engine: Any, docker_client: Any,
        dev_images: Any) -> Iterator[NetCluster]:
    with cluster_up("host-gw", tmp_path_factory.mktemp("streams-lab"), docker_engine.host, docker_client, dev_images,
                    board_names=("b1", "b2")) as c:
        c.create_pod("web-b2", "b2", {"app": "web"}, ports=[{"containerPort": HTTP_PORT, "name": "http"}])
        c.wait_ready("web-b2")
        yield c


@pytest.fixture(scope="module")
def big_sum(lab: NetCluster) -> str:
    out = lab.exec("web-b2", f"head -c {BIG} /dev/urandom > /var/www/big && sha256sum /var/www/big", timeout=60)
    return out.split()[0]


def kubectl(lab: NetCluster, mode: str, *args: str, input: bytes | None = None, timeout: float = 60,
            ) -> subprocess.CompletedProcess[bytes]:
    which, extra = MODES[mode]
    env = {**os.environ, "HOME": str(lab.workdir), **extra}
    env.pop("KUBECONFIG", None)
    return subprocess.run([kubectl_path(which), "--kubeconfig", str(lab.master.kubeconfig), *args], input=input,
                          capture_output=True, timeout=timeout, env=env)


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_exec_env_stdin_and_exit_code(lab: NetCluster, mode: str) -> None:
    env = kubectl(lab, mode, "exec", "web-b2", "--", "env")
    assert env.returncode == 0 and b"HOSTNAME=web-b2" in env.stdout, env
    data = os.urandom(1_000_000)
    cat = kubectl(lab, mode, "exec", "-i", "web-b2", "--", "sh", "-c", "cat | sha256sum", input=data)
    assert cat.returncode == 0 and cat.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest(), cat
    fail = kubectl(lab, mode, "exec", "web-b2", "--", "sh", "-c", "echo to-stderr >&2; exit 3")
    assert fail.returncode == 3 and b"to-stderr" in fail.stderr, fail
    assert b"command terminated with exit code 3" in fail.stderr
    # a command that stops reading its stdin early still gets its exit code to kubectl
    early = kubectl(lab, mode, "exec", "-i", "web-b2", "--", "sh", "-c", "head -c 10 >/dev/null; exit 2",
                    input=os.urandom(5_000_000))
    assert early.returncode == 2, early


def _on_a_terminal(lab: NetCluster, mode: str, args: list[str], typed: bytes, timeout: float = 60,
                   ) -> tuple[bytes, int]:
    """kubectl `args` with a pseudo-terminal as its stdin/stdout, `typed` written to it; (output, exit code)."""
    which, extra = MODES[mode]
    env = {**os.environ, "HOME": str(lab.workdir), **extra, "TERM": "dumb"}
    env.pop("KUBECONFIG", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: kubectl on a terminal
        os.execve(kubectl_path(which), [kubectl_path(which), "--kubeconfig", str(lab.master.kubeconfig), *args],
                  env)
    out = b""
    try:
        os.write(fd, typed)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 1.0)
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def test_exec_with_a_tty(lab: NetCluster, mode: str) -> None:
    out, code = _on_a_terminal(lab, mode, ["exec", "-it", "web-b2", "--", "sh"], b"tty; stty size; exit 4\n")
    assert b"/dev/pts/" in out, out
    assert code == 4, out


def test_run_it_rm_with_a_tty(lab: NetCluster, mode: str) -> None:
    """`kubectl run -it --rm`: a pod with a TTY, attached to on a terminal, removed at the end."""
    name = f"tty-{mode.replace('.', '-')}"
    overrides = json.dumps({"apiVersion": "v1", "spec": {"nodeName": lab.node("b2")}})
    out, _ = _on_a_terminal(lab, mode, ["run", name, f"--image={lab.images.busybox}", "--restart=Never", "-it",
                                        "--rm", f"--overrides={overrides}", "--", "sh"],
                            b"echo on-$(tty | cut -c1-8); exit 0\n", timeout=90)
    assert b"on-/dev/pts" in out, out
    wait_for(f"pod {name} removed", lambda: lab.pod(name) is None or None, 30)


def test_cp_in_and_out(lab: NetCluster, mode: str, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(3_000_000))
    put = kubectl(lab, mode, "cp", str(src), f"default/web-b2:/tmp/{mode}.bin")
    assert put.returncode == 0, put
    back = tmp_path / "out.bin"
    get = kubectl(lab, mode, "cp", f"default/web-b2:/tmp/{mode}.bin", str(back))
    assert get.returncode == 0, get
    assert back.read_bytes() == src.read_bytes()


class PortForward:
    def __init__(self, lab: NetCluster, mode: str, target: str, remote: int) -> None:
        which, extra = MODES[mode]
        env = {**os.environ, "HOME": str(lab.workdir), **extra}
        env.pop("KUBECONFIG", None)
        self.port = free_port()
        self.proc = subprocess.Popen([kubectl_path(which), "--kubeconfig", str(lab.master.kubeconfig),
                                      "port-forward", target, f"{self.port}:{remote}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert b"Forwarding from" in line, line + (self.proc.stderr.read() if self.proc.stderr else b"")

    def get(self, path: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            chunks = []
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1."), head[:200]
        return body

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.mark.parametrize("target", ["pod/web-b2", "svc/web"])
def test_port_forward_http_and_50mb(lab: NetCluster, mode: str, big_sum: str, target: str) -> None:
    if target == "svc/web" and lab.get("/api/v1/namespaces/default/services/web") is None:
        lab.service("web", {"app": "web"}, 80, HTTP_PORT)
    pf = PortForward(lab, mode, target, HTTP_PORT if target.startswith("pod/") else 80)  # svc: the service's port
    try:
        assert pf.get("/index.html").strip() == b"web-b2"
        start = time.monotonic()
        body = pf.get("/big")
        print(f"{mode} {target}: 50 MB in {time.monotonic() - start:.2f} s")
        assert len(body) == BIG and hashlib.sha256(body).hexdigest() == big_sum
        assert pf.get("/index.html").strip() == b"web-b2"
    finally:
        pf.stop()


def test_python_client_stream_and_portforward(lab: NetCluster) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(lab.master.kubeconfig)))
    resp = stream(core.connect_get_namespaced_pod_exec, "web-b2", "default",
                  command=["sh", "-c", "echo out; echo err >&2; exit 6"], stderr=True, stdin=False, stdout=True,
                  tty=False, _preload_content=False)
    resp.run_forever(timeout=30)
    assert resp.read_stdout() == "out\n" and resp.read_stderr() == "err\n"
    assert resp.returncode == 6
    resp.close()
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web-b2", "default", ports=str(HTTP_PORT))
    sock = pf.socket(HTTP_PORT)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    sock.close()
    assert got.endswith(b"\r\n\r\nweb-b2\n"), got
    assert pf.error(HTTP_PORT) is None


def test_streams_leave_the_agent_threads(lab: NetCluster) -> None:
    """The agent's thread count after 20 execs one after another and 20 at once is where it started (/proc)."""
    pid = lab.agents["b2"].pid

    def threads() -> int:
        # `ip netns exec` execs the agent: the process id is the agent's own
        return len(os.listdir(f"/proc/{pid}/task"))

    kubectl(lab, "1.33-websocket", "exec", "web-b2", "--", "true")
    before = wait_for("a settled thread count", lambda: threads() or None, 5)
    for _ in range(20):
        assert kubectl(lab, "1.33-websocket", "exec", "web-b2", "--", "true").returncode == 0
    with ThreadPoolExecutor(20) as pool:  # 20 at once, SPDY and WebSocket mixed
        codes = list(pool.map(lambda i: kubectl(lab, list(MODES)[i % 3], "exec", "web-b2", "--", "true").returncode,
                              range(20)))
    assert codes == [0] * 20
    wait_for("the agent's threads back to where they were", lambda: threads() <= before or None, 10)


def _reader_pod(lab: NetCluster, name: str) -> None:
    """A pod whose one container reads a line from its stdin, answers it and exits."""
    lab.api("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": lab.node("b2"), "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": lab.images.busybox, "stdin": True,
                                 "command": ["sh", "-c", "read line; echo got:$line"]}]}})

    def running() -> bool | None:
        pod = lab.pod(name) or {}
        return (pod.get("status") or {}).get("phase") == "Running" or None

    wait_for(f"{name} running", running, 60)


def test_attach_and_run_it_rm(lab: NetCluster, mode: str) -> None:
    name = f"reader-{mode.replace('.', '-')}"
    _reader_pod(lab, name)
    att = kubectl(lab, mode, "attach", "-i", name, input=b"hello\n")
    assert att.returncode == 0 and b"got:hello" in att.stdout, att
    overrides = json.dumps({"apiVersion": "v1", "spec": {"nodeName": lab.node("b2")}})
    run = kubectl(lab, mode, "run", f"once-{mode.replace('.', '-')}", f"--image={lab.images.busybox}",
                  "--restart=Never", "-i", "--rm", f"--overrides={overrides}", "--", "sh",
                  input=b"echo ran:there\nexit 0\n", timeout=90)
    assert run.returncode == 0 and b"ran:there" in run.stdout, run
    # stdin's end reaches the container: a shell fed a script without `exit` ends at its end
    cat = kubectl(lab, mode, "run", f"cat-{mode.replace('.', '-')}", f"--image={lab.images.busybox}",
                  "--restart=Never", "-i", "--rm", f"--overrides={overrides}", "--", "cat",
                  input=b"through and back\n", timeout=90)
    assert cat.returncode == 0 and b"through and back" in cat.stdout, cat
