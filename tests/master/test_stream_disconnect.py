"""Streams (watches, followed logs) whose client hangs up are released within seconds, with no event to write.

WSGI gives no disconnect signal; without a check of its own the master kept each abandoned stream's worker
thread (and its store watcher or its connection to an agent) until the next event. Evidence used here, all
seen from outside the master process:

- the master's end of the TCP connection: a connection the client closed stays in CLOSE_WAIT for as long
  as the master has not closed its side, which it does only once the request's worker is done with it;
- the master's thread count: each connection has a thread of its own that ends with it, so a second round
  of as many watches must not raise the count beyond the first round's peak (leaked threads would add up).
"""

from __future__ import annotations

import json
import os
import select
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from master.api.streaming import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    SOCKET_KEY,
    STREAM_HEADER,
    client_gone,
    serve_streams,
)
from tests.master.conftest import RunningMaster, kubectl_path

RELEASE_WITHIN = 5.0  # seconds; the server looks at an idle stream's client about once a second
ROUND = 16  # watches per round: more than the pool's spare workers, so a leak would make it grow
QUIET_NS = "stream-quiet"  # nothing is ever written there: a watch on it never has an event
ESTABLISHED, CLOSE_WAIT = "01", "08"
integration = pytest.mark.integration


# --- helpers -------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], within: float, what: str) -> float:
    """Poll `condition` until it holds; the seconds it took, or fail after `within`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def thread_count(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for {pid}")


def settled_thread_count(pid: int) -> int:
    """The thread count once it has not changed for a second (the pool grows in steps, 0.1 s apart)."""
    samples = [thread_count(pid)]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.1)
        samples.append(thread_count(pid))
        if len(samples) >= 10 and len(set(samples[-10:])) == 1:
            return samples[-1]
    raise AssertionError(f"thread count never settled: {samples[-20:]}")


def held(port: int) -> dict[int, str]:
    """The master's end of its connections (local port `port`) still open: client port -> TCP state."""
    found: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state in (ESTABLISHED, CLOSE_WAIT):
                found[int(remote.rsplit(":", 1)[1], 16)] = state
    return found


class Stream:
    """One streamed GET on its own connection; `hang_up` drops it as a client that goes away does."""

    def __init__(self, master: RunningMaster, path: str, params: dict[str, str]) -> None:
        self.session = master.session()  # its own connection; trust_env is off (REQUESTS_CA_BUNDLE)
        self.resp = self.session.get(f"{master.url}{path}", params=params, stream=True, timeout=10)
        assert self.resp.status_code == 200, self.resp.text
        self.port = int(self.resp.raw.connection.sock.getsockname()[1])

    def hang_up(self, reset: bool = False) -> None:
        """Close the socket without a word (FIN), or with `reset` as a crashed client would (RST)."""
        if reset:
            sock = self.resp.raw.connection.sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.resp.close()
        self.session.close()


def quiet_watches(master: RunningMaster, n: int) -> list[Stream]:
    return [Stream(master, f"/api/v1/namespaces/{QUIET_NS}/secrets", {"watch": "1", "timeoutSeconds": "600"})
            for _ in range(n)]


def released(master: RunningMaster, ports: set[int]) -> Callable[[], bool]:
    return lambda: not ports & held(master.port).keys()


def quiet_ns_is_empty(master: RunningMaster) -> bool:
    items = master.session().get(f"{master.url}/api/v1/namespaces/{QUIET_NS}/secrets", timeout=10).json()["items"]
    return items == []


# --- watches -------------------------------------------------------------------------------------------------


@integration
def test_abandoned_watches_free_their_threads_without_an_event(master: RunningMaster) -> None:
    first = quiet_watches(master, ROUND)
    peak = settled_thread_count(master.proc.pid)
    ports = {w.port for w in first}
    assert ports <= held(master.port).keys()  # the master holds every watch open
    for i, w in enumerate(first):
        w.hang_up(reset=i % 2 == 1)
    wait_for(released(master, ports), RELEASE_WITHIN, "the master closes the connections of watches whose "
                                                      "clients left")

    # The first round's threads are gone: the next round does not add to them (leaked ones would add ROUND).
    second = quiet_watches(master, ROUND)
    assert settled_thread_count(master.proc.pid) <= peak + 4
    for w in second:
        w.hang_up()
    wait_for(released(master, {w.port for w in second}), RELEASE_WITHIN, "second round released")
    assert quiet_ns_is_empty(master)  # no event was ever written that the watches could have failed on


@integration
def test_watch_ends_at_its_timeout_without_an_event(master: RunningMaster) -> None:
    start = time.monotonic()
    w = Stream(master, f"/api/v1/namespaces/{QUIET_NS}/secrets", {"watch": "1", "timeoutSeconds": "2"})
    body = w.resp.raw.read()  # returns once the server ends the response
    took = time.monotonic() - start
    assert body == b""  # no event, and no byte of the quiet ticks either
    assert 1.5 <= took < 2 + RELEASE_WITHIN, took
    w.hang_up()


@integration
def test_quiet_ticks_never_reach_the_wire_and_events_still_do(master: RunningMaster) -> None:
    admin = master.session()
    ns = "stream-events"
    admin.post(f"{master.url}/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
    path = f"/api/v1/namespaces/{ns}/configmaps"
    # The controllers put kube-root-ca.crt in every new namespace: the watch starts after it.
    wait_for(lambda: admin.get(f"{master.url}{path}/kube-root-ca.crt").status_code == 200, 10, "kube-root-ca.crt")
    rv = admin.get(f"{master.url}{path}").json()["metadata"]["resourceVersion"]
    w = Stream(master, path, {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "60"})
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(w.resp.raw.read(1)), daemon=True)
    reader.start()
    # Several ticks pass (one a second) with nothing on the wire: the first byte waits for the event.
    reader.join(2.5)
    assert reader.is_alive() and got == []
    admin.post(f"{master.url}{path}", json={"metadata": {"name": "after-quiet"}}).raise_for_status()
    wait_for(lambda: got != [], RELEASE_WITHIN, "the event's first byte arrives")
    rest = b""
    while not rest.endswith(b"\n"):
        rest += w.resp.raw.read(1)
    event = json.loads(got[0] + rest)
    assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "after-quiet"
    w.hang_up()
    wait_for(released(master, {w.port}), RELEASE_WITHIN, "watch released after its client left")


@integration
def test_python_client_watch_with_a_request_timeout_is_released(master: RunningMaster) -> None:
    from kubernetes import client, config, watch

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(master.kubeconfig)))
    before = set(held(master.port))
    w = watch.Watch()
    with pytest.raises(Exception) as info:
        for _ in w.stream(core.list_namespaced_secret, QUIET_NS, _request_timeout=(5, 1)):
            pass
    assert "timed out" in str(info.value).lower(), info.value
    wait_for(lambda: set(held(master.port)) <= before and CLOSE_WAIT not in held(master.port).values(),
             RELEASE_WITHIN, "the Python client's timed-out watch is released")


@integration
@pytest.mark.parametrize("which", ["old", "new"])
def test_kubectl_get_watch_killed_is_released(master: RunningMaster, which: str) -> None:
    admin = master.session()
    ns = f"stream-kubectl-{which}"
    admin.post(f"{master.url}/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
    before = set(held(master.port))
    cmd = [kubectl_path(which), "--kubeconfig", str(master.kubeconfig), "get", "configmaps", "-n", ns, "-w"]
    env = {**os.environ, "HOME": str(master.data_dir)}
    env.pop("KUBECONFIG", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    try:
        for name in ("first", "second"):
            # "second" is created after kubectl printed "first", so after its list: it comes through the watch.
            admin.post(f"{master.url}/api/v1/namespaces/{ns}/configmaps",
                       json={"metadata": {"name": name}}).raise_for_status()
            wait_for(lambda n=name: any(line.startswith(n) for line in lines), 20, f"kubectl prints {name}: {lines}")
    finally:
        proc.kill()
        proc.wait(10)
    wait_for(lambda: set(held(master.port)) <= before, RELEASE_WITHIN, f"kubectl {which}'s watch is released")


# --- followed logs, through a fake agent ---------------------------------------------------------------------


class FakeAgent:
    """One HTTPS connection on loopback answered as the agent's log endpoint would, then kept quiet."""

    def __init__(self, tmp: Path) -> None:
        from agent.credentials import ensure_serving_cert

        cert = ensure_serving_cert(tmp, "fake-board", ["127.0.0.1"])
        self.pin = cert.sha256
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(str(cert.cert), str(cert.key))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.request_line = ""
        self.master_hung_up = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        self._listener.close()
        with self._ctx.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(60)
            data = b""
            while b"\r\n\r\n" not in data:
                more = tls.recv(4096)
                if not more:
                    return
                data += more
            self.request_line = data.split(b"\r\n", 1)[0].decode()
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n")
            try:
                while tls.recv(4096):  # a quiet container: nothing more, until the master hangs up
                    pass
            except OSError:
                pass
            self.master_hung_up.set()


@integration
def test_followed_log_of_a_quiet_container_is_released(master: RunningMaster, tmp_path: Path) -> None:
    agent = FakeAgent(tmp_path)
    admin = master.session()
    base = master.url
    node = {"metadata": {"name": "fake-board", "annotations": {"pikube.io/serving-cert-sha256": agent.pin}}}
    admin.post(f"{base}/api/v1/nodes", json=node).raise_for_status()
    status = {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": agent.port}}}}
    admin.patch(f"{base}/api/v1/nodes/fake-board/status", data=json.dumps(status),
                headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
    ns = "stream-logs"
    admin.post(f"{base}/api/v1/namespaces", json={"metadata": {"name": ns}}).raise_for_status()
    pod = {"metadata": {"name": "quiet"},
           "spec": {"nodeName": "fake-board", "containers": [{"name": "app", "image": "pikube/busybox:1"}]}}
    wait_for(lambda: admin.post(f"{base}/api/v1/namespaces/{ns}/pods", json=pod).status_code in (201, 409),
             30, "the pod is created")

    logs = Stream(master, f"/api/v1/namespaces/{ns}/pods/quiet/log", {"follow": "true"})
    assert next(logs.resp.iter_lines()) == b"hello"
    assert agent.request_line.startswith(f"GET /containerLogs/{ns}/quiet/app?follow=true ")
    assert not agent.master_hung_up.is_set()
    logs.hang_up()
    assert agent.master_hung_up.wait(RELEASE_WITHIN), "the master closes its connection to the agent"
    wait_for(released(master, {logs.port}), RELEASE_WITHIN, "the log stream's connection is released")


# --- the mechanism, without a server -------------------------------------------------------------------------


def loopback_pair() -> tuple[socket.socket, socket.socket]:
    """(client, server) ends of one TCP connection on loopback."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server


@pytest.mark.parametrize("how", ["close", "reset", "half-close"])
def test_client_gone_sees_a_hang_up_but_not_data(how: str) -> None:
    client, server = loopback_pair()
    with client, server:
        gone = client_gone({SOCKET_KEY: server})
        assert not gone()
        client.sendall(b"\x17\x03\x03")  # bytes from the client (a TLS record) are not a hang-up
        assert select.select([server], [], [], 5)[0]
        assert not gone()
        if how == "reset":
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if how == "half-close":  # as Go's server, a client that stops sending is taken to have left
            client.shutdown(socket.SHUT_WR)
        else:
            client.close()
        wait_for(gone, RELEASE_WITHIN, f"{how} is seen")


def test_client_gone_without_a_socket_never_says_gone() -> None:
    assert client_gone({})() is False


def test_serve_streams_flushes_headers_drops_ticks_and_ends_when_the_client_leaves() -> None:
    client, server = loopback_pair()
    closed = threading.Event()

    def body() -> Iterator[bytes]:
        try:
            yield b"first\n"
            while True:  # a quiet stream: ticks only
                time.sleep(0.01)
                yield b""
        finally:
            closed.set()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), (STREAM_HEADER, "1")])
        return body()

    written: list[bytes] = []
    sent_headers: list[tuple[str, str]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        sent_headers.extend(headers)
        return written.append

    with client, server:
        result = serve_streams(app)({SOCKET_KEY: server}, start_response)
        assert written == [b""]  # headers flushed before the first event
        assert all(k != STREAM_HEADER for k, _ in sent_headers)
        assert server.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_COUNT
        chunks: list[bytes] = []
        done = threading.Event()

        def serve() -> None:
            chunks.extend(result)
            result.close()
            done.set()

        threading.Thread(target=serve, daemon=True).start()
        wait_for(lambda: chunks == [b"first\n"], RELEASE_WITHIN, "the first chunk is served")
        client.close()
        wait_for(done.is_set, RELEASE_WITHIN, "the stream ends once the client left")
        assert chunks == [b"first\n"]  # no empty chunk was passed on
        assert closed.is_set()  # the body was closed, so it released what it held
