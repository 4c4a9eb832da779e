"""The page shows what first boot did on its board: /api/firstboot, behind the page's token like the rest."""

from __future__ import annotations

import threading
from pathlib import Path

from flask.testing import FlaskClient

from core import firstboot
from core.settings import MasterSettings
from master.registry.context import ApiContext
from pikube.run.master import page_prefixes
from tests.web.conftest import TOKEN, make_ctx
from web.app import create_web_app

RECORD = firstboot.Record(
    result=firstboot.FAILED, source="/boot/firmware/pikube.yaml", started="2026-05-28T10:00:00Z",
    finished="2026-05-28T10:02:00Z",
    steps=(firstboot.StepRecord("hostname", firstboot.DONE, "set to pi-1"),
           firstboot.StepRecord("role", firstboot.STEP_FAILED, error="enable-master failed 4 times")))


def client_for(ctx: ApiContext, record: firstboot.Record | None, stopping: threading.Event) -> FlaskClient:
    app = create_web_app(ctx.settings, ctx.store, page_prefixes(ctx.catalog), stopping,
                         first_boot=lambda: record)
    return app.test_client()


def test_the_record_is_served_as_json(ctx: ApiContext, stopping: threading.Event) -> None:
    doc = client_for(ctx, RECORD, stopping).get("/api/firstboot").get_json()
    assert doc["record"]["result"] == "failed"
    assert [(s["name"], s["status"], s["error"]) for s in doc["record"]["steps"]] == [
        ("hostname", "done", ""), ("role", "failed", "enable-master failed 4 times")]


def test_no_record_is_null_and_the_page_has_a_hidden_place_for_it(client: FlaskClient) -> None:
    assert client.get("/api/firstboot").get_json() == {"record": None}
    page = client.get("/").text
    assert 'id="firstboot-section" hidden' in page
    assert "api/firstboot" in client.get("/static/status.js").text


def test_it_needs_the_token_like_the_rest(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, web_token=TOKEN)
    stop = threading.Event()
    try:
        locked = client_for(ctx, RECORD, stop)
        assert locked.get("/api/firstboot").status_code == 401
        assert locked.get("/api/firstboot", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        stop.set()
        ctx.store.close()  # type: ignore[attr-defined]


def test_pikube_master_reads_the_record_beside_its_data_dir(tmp_path: Path) -> None:
    from pikube.run.master import MasterProcess

    (tmp_path / "firstboot.json").write_text(RECORD.to_json())
    proc = MasterProcess(MasterSettings(data_dir=tmp_path / "master", web_port=18080))
    try:
        assert proc.web is not None
        assert proc.web.app.test_client().get("/api/firstboot").get_json()["record"]["result"] == "failed"
    finally:
        proc.master.stopping.set()
        proc.master.store.close()
