"""The page shows the cluster's store: /api/datastore (the master's store describing itself), behind the page's
token like the rest, with a hidden section the script fills for an etcd cluster."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from master.registry.context import ApiContext
from pikube.run.master import page_prefixes
from tests.web.conftest import TOKEN, make_ctx
from web.app import create_web_app

ETCD = {"backend": "etcd", "readOnly": False, "leader": "m0", "members": [
    {"name": "m0", "id": "1", "healthy": True, "clientURLs": ["http://10.0.0.2:2379"]},
    {"name": "m1", "id": "2", "healthy": False, "clientURLs": ["http://10.0.0.3:2379"]}]}


def client_for(ctx: ApiContext, describe: Any, stopping: threading.Event) -> FlaskClient:
    app = create_web_app(ctx.settings, ctx.store, page_prefixes(ctx.catalog), stopping, datastore=describe)
    return app.test_client()


def test_the_store_describes_itself_to_the_page(ctx: ApiContext, stopping: threading.Event) -> None:
    assert client_for(ctx, lambda: ETCD, stopping).get("/api/datastore").get_json() == {"datastore": ETCD}
    real = client_for(ctx, ctx.store.describe, stopping).get("/api/datastore").get_json()["datastore"]
    assert real["backend"] == "sqlite" and real["readOnly"] is False


def test_a_store_that_cannot_say_leaves_the_page_serving(ctx: ApiContext, stopping: threading.Event) -> None:
    def broken() -> dict[str, Any]:
        raise OSError("etcd unreachable")

    client = client_for(ctx, broken, stopping)
    assert client.get("/api/datastore").get_json() == {"datastore": {"error": "OSError: etcd unreachable"}}
    assert client.get("/").status_code == 200


def test_the_page_has_a_hidden_place_for_it_and_needs_the_token(client: FlaskClient, tmp_path: Path) -> None:
    assert 'id="datastore-section" hidden' in client.get("/").text
    assert "api/datastore" in client.get("/static/status.js").text
    ctx = make_ctx(tmp_path, web_token=TOKEN)
    stop = threading.Event()
    try:
        locked = client_for(ctx, lambda: ETCD, stop)
        assert locked.get("/api/datastore").status_code == 401
        assert locked.get("/api/datastore", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        stop.set()
        ctx.store.close()  # type: ignore[attr-defined]
