"""The page's HTTP surface in-process: no secret values, the access token, read-only, live updates."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from master.registry.context import ApiContext
from tests.web.conftest import TOKEN, Objects, make_ctx, page_app
from web.views import StatusPage

SECRET_VALUE = "hunter2-do-not-show"
ENV_VALUE = "literal-env-value-4242"
ENV_NAME = "DATABASE_PASSWORD_VAR"


def first_message(client: FlaskClient, path: str = "/api/stream") -> bytes:
    """The opening chunk(s) of an SSE response, up to the first complete message."""
    response = client.get(path, buffered=False)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/event-stream"
    body = b""
    for chunk in response.response:  # type: ignore[attr-defined]
        body += chunk
        if b"\n\n" in body.split(b"event: summary", 1)[-1]:
            break
    response.close()
    return body


def test_no_secret_or_env_value_anywhere(ctx: ApiContext, objects: Objects, client: FlaskClient) -> None:
    objects.node("pi-1")
    objects.create("secrets", "default", {"metadata": {"name": "db"}, "stringData": {"password": SECRET_VALUE},
                                          "data": {"other": base64.b64encode(SECRET_VALUE.encode()).decode()}})
    objects.pod("app-1", "pi-1", container={"env": [
        {"name": ENV_NAME, "value": ENV_VALUE},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
        "envFrom": [{"secretRef": {"name": "db"}}]})
    summary = client.get("/api/summary")
    assert summary.status_code == 200 and summary.is_json
    assert any(p["name"] == "app-1" for g in summary.json["podsByBoard"] for p in g["pods"])  # type: ignore[index]
    pages = [summary.data, client.get("/").data, first_message(client)]
    for static in ("status.js", "status.css"):
        pages.append(client.get(f"/static/{static}").data)
    forbidden = [SECRET_VALUE, base64.b64encode(SECRET_VALUE.encode()).decode(), ENV_VALUE, ENV_NAME, "FROM_SECRET"]
    for page in pages:
        text = page.decode()
        for value in forbidden:
            assert value not in text


@pytest.fixture
def locked(tmp_path: Path) -> Any:
    c = make_ctx(tmp_path, web_token=TOKEN)
    stop = threading.Event()
    yield page_app(c, stop).test_client()
    stop.set()
    c.store.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/", "/api/summary", "/api/stream"])
def test_token_required_when_set(locked: FlaskClient, path: str) -> None:
    missing = locked.get(path)
    assert missing.status_code == 401 and missing.mimetype == "text/plain"
    assert "token" in missing.text and missing.headers["WWW-Authenticate"].startswith("Bearer")
    for wrong in (locked.get(path, query_string={"token": "nope"}),
                  locked.get(path, headers={"Authorization": "Bearer nope"}),
                  locked.get(path, query_string={"token": TOKEN[:-1]})):
        assert wrong.status_code == 403 and "Wrong access token" in wrong.text
        assert "pods" not in wrong.text


def test_right_token_by_query_or_header(locked: FlaskClient) -> None:
    assert locked.get("/api/summary", query_string={"token": TOKEN}).status_code == 200
    assert locked.get("/api/summary", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert locked.get("/", query_string={"token": TOKEN}).status_code == 200
    assert b"event: summary" in first_message(locked, f"/api/stream?token={TOKEN}")


def test_assets_need_no_token(locked: FlaskClient) -> None:
    for name in ("status.js", "status.css", "favicon.svg"):
        assert locked.get(f"/static/{name}").status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_read_only(client: FlaskClient, method: str) -> None:
    for path in ("/", "/api/summary", "/api/stream"):
        response = getattr(client, method)(path)
        assert response.status_code == 405


def test_page_is_self_contained(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert page.headers["Referrer-Policy"] == "no-referrer"  # a ?token= never leaves in a Referer
    html = page.text
    for asset in ("status.js", "status.css", "favicon.svg"):
        assert f"/static/{asset}?v=" in html
    for text in (html, client.get("/static/status.css").text, client.get("/static/status.js").text):
        assert "https://" not in text and "@import" not in text and 'src="//' not in text
        assert "url(" not in text  # no fonts or images from anywhere


def test_summary_json_shape(objects: Objects, client: FlaskClient) -> None:
    objects.node("pi-1")
    data = client.get("/api/summary").json
    assert data is not None
    assert set(data) == {"now", "schema", "version", "totals", "boards", "workloads", "podsByBoard", "services",
                         "events"}
    assert data["now"].endswith("Z") and data["schema"] == 1


def test_stream_sends_changes_quickly(objects: Objects, client: FlaskClient, stopping: threading.Event) -> None:
    objects.node("pi-1")
    response = client.get("/api/stream", buffered=False)
    chunks: queue.Queue[bytes] = queue.Queue()

    def read() -> None:
        for chunk in response.response:  # type: ignore[attr-defined]
            chunks.put(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    first = chunks.get(timeout=5)
    assert first.startswith(b"retry: ") and b"event: summary" in first
    time.sleep(0.3)
    started = time.monotonic()
    objects.pod("late-arrival", "pi-1")
    while True:
        chunk = chunks.get(timeout=max(0.1, 2.0 - (time.monotonic() - started)))
        if b"late-arrival" in chunk:
            break
    assert time.monotonic() - started < 2.0
    data = json.loads(chunk.split(b"data: ", 1)[1])
    assert "late-arrival" in [p["name"] for g in data["podsByBoard"] for p in g["pods"]]
    stopping.set()  # the master stopping ends every stream within a second
    reader.join(3)
    assert not reader.is_alive()
    response.close()


def test_one_watch_per_kind_for_any_number_of_viewers(ctx: ApiContext, client: FlaskClient) -> None:
    store: Any = ctx.store
    before = store.watcher_count()
    responses = [client.get("/api/stream", buffered=False) for _ in range(5)]
    for r in responses:
        next(iter(r.response))  # type: ignore[attr-defined]
    page: StatusPage = client.application.extensions["pikube-status"]
    assert page.streams.open == 5
    assert store.watcher_count() - before == 9  # nodes, pods, services, events, deployments, daemonsets, jobs,
    # cronjobs, statefulsets
    for r in responses:
        r.close()
    assert page.streams.open == 0


def test_streams_are_capped_and_the_page_falls_back(client: FlaskClient) -> None:
    page: StatusPage = client.application.extensions["pikube-status"]
    open_ = [client.get("/api/stream", buffered=False) for _ in range(page.streams.limit)]
    refused = client.get("/api/stream")
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert client.get("/api/summary").status_code == 200  # polling still works
    open_[0].close()
    again = client.get("/api/stream", buffered=False)
    assert again.status_code == 200
    for r in [*open_[1:], again]:
        r.close()
    assert page.streams.open == 0
