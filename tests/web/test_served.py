"""The status page served by a real `pikube master` (the CLI, as a board runs it) over plain HTTP."""

from __future__ import annotations

import argparse
import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pikube.cli.master import register, settings_from
from pikube.dev.localmaster import master_argv, spawn_master
from tests.master.conftest import RunningMaster, free_port
from tests.web.conftest import TOKEN, wait_for_page

SECRET_VALUE = "served-secret-value-777"
ENV_VALUE = "served-env-value-888"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["master", *argv])


def test_cli_flags_map_to_settings() -> None:
    default = settings_from(parse())
    assert (default.web_port, default.web_bind, default.web_token) == (8080, "0.0.0.0", "")
    s = settings_from(parse("--web-port", "9090", "--web-bind", "127.0.0.1", "--web-token", "t0k"))
    assert (s.web_port, s.web_bind, s.web_token) == (9090, "127.0.0.1", "t0k")
    assert settings_from(parse("--web-port", "0")).web_port == 0


def start_cli_master(data_dir: Path, *extra: str) -> RunningMaster:
    """`python -m pikube.cli master` with `extra` flags (they win over the default `--web-port 0`)."""
    port = free_port()
    return spawn_master(master_argv(data_dir, port, "127.0.0.1", *extra), data_dir, port)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningMaster, str]]:
    web_port = free_port()
    m = start_cli_master(tmp_path_factory.mktemp("served") / "data", "--web-port", str(web_port),
                         "--web-bind", "127.0.0.1", "--web-token", TOKEN)
    url = f"http://127.0.0.1:{web_port}"
    wait_for_page(url)
    yield m, url
    m.stop()


@pytest.mark.integration
def test_token_over_http(served: tuple[RunningMaster, str]) -> None:
    _, url = served
    assert requests.get(url + "/api/summary", timeout=5).status_code == 401
    assert requests.get(url + "/api/summary", params={"token": "wrong"}, timeout=5).status_code == 403
    assert requests.get(url + "/api/summary", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 403
    ok = requests.get(url + "/api/summary", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert ok.status_code == 200 and ok.json()["schema"] == 1
    assert requests.get(url + "/", params={"token": TOKEN}, timeout=5).status_code == 200
    assert requests.post(url + "/api/summary", params={"token": TOKEN}, timeout=5).status_code == 405


@pytest.mark.integration
def test_stream_over_http_carries_changes_and_no_secrets(served: tuple[RunningMaster, str]) -> None:
    m, url = served
    api = m.session()
    api.post(f"{m.url}/api/v1/namespaces/default/secrets", json={
        "metadata": {"name": "db"}, "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()}},
        timeout=10).raise_for_status()
    with requests.get(url + "/api/stream", params={"token": TOKEN}, stream=True, timeout=10) as stream:
        assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert any(line.startswith(b"data: ") for line in _until_data(lines))
        started = time.monotonic()
        api.post(f"{m.url}/api/v1/namespaces/default/pods", json={"metadata": {"name": "envy"}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "env": [
                {"name": "PLAIN", "value": ENV_VALUE},
                {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}},
            timeout=10).raise_for_status()
        seen = b""
        while b'"envy"' not in seen:
            seen = b"".join(_until_data(lines))
        assert time.monotonic() - started < 2.0
    page = requests.get(url + "/", params={"token": TOKEN}, timeout=5).text
    summary = requests.get(url + "/api/summary", params={"token": TOKEN}, timeout=5).text
    for text in (seen.decode(), page, summary):
        for value in (SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode(), ENV_VALUE):
            assert value not in text


def _until_data(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Lines of the stream up to and including the next `data:` line."""
    for line in lines:
        yield line
        if line.startswith(b"data: "):
            return


@pytest.mark.integration
def test_busy_web_port_leaves_the_api_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        m = start_cli_master(tmp_path / "data", "--web-port", str(port), "--web-bind", "127.0.0.1")
        try:
            assert requests.get(f"{m.url}/healthz", verify=str(m.ca), timeout=5).ok
            deadline = time.monotonic() + 10
            while "status page: cannot listen" not in m.log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "status page: cannot listen" in m.log_path.read_text()
        finally:
            m.stop()


@pytest.mark.integration
def test_web_port_zero_serves_no_page(tmp_path: Path) -> None:
    m = start_cli_master(tmp_path / "data", "--web-port", "0")
    try:
        time.sleep(0.5)
        assert "status page" not in m.log_path.read_text()
    finally:
        m.stop()


@pytest.mark.integration
def test_master_stops_promptly_with_viewers_connected(tmp_path: Path) -> None:
    web_port = free_port()
    m = start_cli_master(tmp_path / "data", "--web-port", str(web_port), "--web-bind", "127.0.0.1")
    wait_for_page(f"http://127.0.0.1:{web_port}")
    streams = [requests.get(f"http://127.0.0.1:{web_port}/api/stream", stream=True, timeout=10) for _ in range(3)]
    try:
        for s in streams:
            assert next(s.iter_lines()).startswith(b"retry:")
        started = time.monotonic()
        m.proc.terminate()
        assert m.proc.wait(8) == 0, m.log_path.read_text()[-2000:]
        assert time.monotonic() - started < 5
    finally:
        for s in streams:
            s.close()
        m.stop(9)


@pytest.mark.integration
def test_slow_and_idle_connections_do_not_take_the_page_down(served: tuple[RunningMaster, str]) -> None:
    """A dozen (here two hundred) idle or trickling connections from one address used to hold every thread."""
    _, url = served
    port = int(url.rsplit(":", 1)[1])
    held = []
    for i in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
            if i % 2:
                s.sendall(b"GET /api/summary HTTP/1.1\r\nHost: x\r\n")  # headers that never end
        except (ConnectionResetError, BrokenPipeError):
            # Beyond the per-address cap the server closes a connection at once; on a busy machine its reset
            # can arrive before connect() or the first send returns. Refused is what the cap is for.
            continue
        held.append(s)
    try:
        for _ in range(5):
            start = time.monotonic()
            page = requests.get(url + "/", params={"token": TOKEN}, timeout=2)
            summary = requests.get(url + "/api/summary", params={"token": TOKEN}, timeout=2)
            assert page.status_code == 200 and summary.status_code == 200
            assert time.monotonic() - start < 1.0
    finally:
        for s in held:
            s.close()
