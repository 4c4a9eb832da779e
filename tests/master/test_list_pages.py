"""Paged lists (`limit`/`continue`): every page is read at the revision of the first page."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from master.registry.catalog import Catalog, builtin_resources
from master.registry.listing import CONTINUE_EXPIRED
from master.store.sqlite import SqliteStore
from pikube.dev.netlab import wait_for
from tests.master.conftest import RunningMaster, kubectl

TOKEN = "test-admin-token"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "pages"}},
            "data": data}


def names(items: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in items]


class Api:
    """The few calls the tests make, over a requests session or a Flask test client."""

    def __init__(self, call: Any, controllers: bool = False) -> None:
        self._call = call
        self.controllers = controllers  # a running master puts kube-root-ca.crt in every new namespace

    def req(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
            ok: int | None = 200) -> dict[str, Any]:
        code, out = self._call(method, path, body, params or {})
        if ok is not None:
            assert code == ok, (method, path, code, out)
        out["_code"] = code
        return out

    def namespace(self, ns: str) -> None:
        """A new namespace; with controllers running, once its `kube-root-ca.crt` is there (it lists last)."""
        self.req("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": ns}}, ok=201)
        if self.controllers:
            wait_for("kube-root-ca.crt", lambda: self.req(
                "GET", f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt", ok=None)["_code"] == 200, 10, 0.05)

    def create(self, ns: str, name: str, **data: str) -> dict[str, Any]:
        return self.req("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap(name, **data), ok=201)

    def update(self, ns: str, name: str, **data: str) -> dict[str, Any]:
        return self.req("PUT", f"/api/v1/namespaces/{ns}/configmaps/{name}", configmap(name, **data))

    def delete(self, ns: str, name: str) -> None:
        self.req("DELETE", f"/api/v1/namespaces/{ns}/configmaps/{name}")

    def list(self, ns: str, ok: int = 200, **params: Any) -> dict[str, Any]:
        return self.req("GET", f"/api/v1/namespaces/{ns}/configmaps", params=params, ok=ok)


def over_http(session: requests.Session, url: str) -> Api:
    def call(method: str, path: str, body: Any, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = session.request(method, url + path, json=body, params=params, timeout=30)
        return r.status_code, r.json()
    return Api(call, controllers=True)


@pytest.fixture(scope="module")
def api(master: RunningMaster) -> Api:
    return over_http(master.session(), master.url)


def strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]


def test_pages_show_the_first_pages_revision_whatever_changes_between_them(api: Api) -> None:
    ns = "pages-mutate"
    api.namespace(ns)
    for i in range(10):
        api.create(ns, f"c{i:02}", v="0")
    snapshot = api.list(ns)
    first = api.list(ns, limit=3)
    rv = first["metadata"]["resourceVersion"]
    assert names(first["items"]) == ["c00", "c01", "c02"]
    assert first["metadata"]["remainingItemCount"] == 8  # the other 7 and kube-root-ca.crt
    seen = list(first["items"])
    token = first["metadata"]["continue"]
    step = 0
    while token:
        # Between pages: delete an unread object, add one into the unread part and one into
        # the read part, update an unread one, delete and re-create another.
        step += 1
        if 3 * step + 1 < 10:
            api.delete(ns, f"c{3 * step + 1:02}")
        api.create(ns, f"c{3 * step:02}a")
        api.create(ns, f"b{step}")
        if 3 * step + 2 < 10:
            api.update(ns, f"c{3 * step + 2:02}", v=str(step))
        page = api.list(ns, limit=3, **{"continue": token})
        assert page["metadata"]["resourceVersion"] == rv
        assert len(page["items"]) <= 3
        if page["metadata"].get("continue"):
            assert page["metadata"]["remainingItemCount"] == 11 - len(seen) - len(page["items"])
        seen += page["items"]
        token = page["metadata"].get("continue", "")
    assert seen == snapshot["items"]  # each object of the snapshot once, as it was then
    assert all(int(o["metadata"]["resourceVersion"]) <= int(rv) for o in seen)
    now = api.list(ns)
    assert "c04" not in names(now["items"]) and "b1" in names(now["items"])


def test_selector_pages_read_at_one_revision(api: Api) -> None:
    ns = "pages-selector"
    api.namespace(ns)
    for i in range(8):
        api.create(ns, f"c{i}")
    api.req("PUT", f"/api/v1/namespaces/{ns}/configmaps/c3",
            {**configmap("c3"), "metadata": {"name": "c3", "labels": {"app": "other"}}})
    want = names(api.list(ns, labelSelector="app=pages")["items"])
    first = api.list(ns, limit=2, labelSelector="app=pages")
    assert "remainingItemCount" not in first["metadata"]  # not counted under selectors, as Kubernetes
    seen = names(first["items"])
    token = first["metadata"]["continue"]
    while token:
        for name in ("c5", "c6"):
            if name not in seen:
                api.req("PUT", f"/api/v1/namespaces/{ns}/configmaps/{name}",
                        {**configmap(name), "metadata": {"name": name, "labels": {"app": "other"}}}, ok=None)
        page = api.list(ns, limit=2, labelSelector="app=pages", **{"continue": token})
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        seen += names(page["items"])
        token = page["metadata"].get("continue", "")
    assert seen == want


def test_bad_continue_tokens_are_400(api: Api) -> None:
    assert api.list("default", **{"continue": "!!"}, ok=400)["reason"] == "BadRequest"
    future = base64.urlsafe_b64encode(json.dumps({"rv": 10**12, "start": "/core/configmaps/default/a"})
                                      .encode()).decode()
    assert api.list("default", **{"continue": future}, ok=400)["reason"] == "BadRequest"
    other = base64.urlsafe_b64encode(json.dumps({"rv": 1, "start": "/core/secrets/default/a"})
                                     .encode()).decode()
    assert api.list("default", **{"continue": other}, ok=400)["reason"] == "BadRequest"


def test_kubectl_chunked_get_lists_every_object_once(master: RunningMaster, api: Api) -> None:
    ns = "pages-kubectl"
    api.namespace(ns)
    for i in range(7):
        api.create(ns, f"k{i}")
    want = sorted(f"configmap/{n}" for n in names(api.list(ns)["items"]))
    out = kubectl(master, "new", "get", "configmaps", "-n", ns, "--chunk-size=2", "-o", "name", "-v=6")
    assert sorted(out.stdout.split()) == want
    assert out.stdout.split() == want  # in key order, each once
    assert "continue=" in out.stderr  # it did page
    table = kubectl(master, "new", "get", "configmaps", "-n", ns, "--chunk-size=2")
    rows = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    assert rows == [w.removeprefix("configmap/") for w in want]


# ---- an expired snapshot, in-process (compaction is the store's, not reachable over the API) ----

@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Api, SqliteStore]]:
    from core.settings import MasterSettings
    from master.api.app import create_app
    from master.registry.context import ApiContext

    store = SqliteStore(tmp_path / "state.db")
    ctx = ApiContext(settings=MasterSettings(data_dir=tmp_path), store=store, catalog=Catalog(builtin_resources()))
    app = create_app(ctx, admin_token=TOKEN)
    with app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"

        def call(method: str, path: str, body: Any, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            c: FlaskClient = client
            r = c.open(path, method=method, json=body, query_string=params)
            return r.status_code, r.get_json()
        yield Api(call), store
    store.close()


def test_a_compacted_snapshot_is_410_with_a_token_that_continues_at_the_current_state(
        local: tuple[Api, SqliteStore]) -> None:
    api, store = local
    api.namespace("default")
    for i in range(6):
        api.create("default", f"c{i}", v="0")
    first = api.list("default", limit=2)
    api.update("default", "c3", v="1")
    api.delete("default", "c4")
    store.compact(store.revision())
    gone = api.list("default", limit=2, ok=410, **{"continue": first["metadata"]["continue"]})
    assert gone["reason"] == "Expired" and gone["code"] == 410 and gone["kind"] == "Status"
    assert gone["message"] == CONTINUE_EXPIRED
    assert gone["message"].startswith("The provided continue parameter is too old to display a consistent list")
    # The Status's token continues from the same key at the current state...
    rest = api.list("default", limit=2, **{"continue": gone["metadata"]["continue"]})
    now = store.revision()
    assert rest["metadata"]["resourceVersion"] == str(now)
    assert names(rest["items"]) == ["c2", "c3"] and rest["items"][0]["data"] == {"v": "0"}
    assert rest["items"][1]["data"] == {"v": "1"}
    # ...and the pages after it are read at that state.
    api.create("default", "c50")
    last = api.list("default", limit=2, **{"continue": rest["metadata"]["continue"]})
    assert names(last["items"]) == ["c5"] and last["metadata"]["resourceVersion"] == str(now)
    assert "continue" not in last["metadata"]


def test_lease_pages_show_the_renewals_before_the_first_page(local: tuple[Api, SqliteStore]) -> None:
    """Leases live in memory only; a snapshot page still shows each as it was then."""
    api, store = local
    api.namespace("default")
    rows = store.log_rows()
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases"

    def lease(name: str, renew: str) -> dict[str, Any]:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
                "spec": {"holderIdentity": name, "renewTime": renew}}

    for i in range(4):
        api.req("POST", path, lease(f"l{i}", "2025-01-01T00:00:00.000000Z"), ok=201)
    whole = api.req("GET", path)
    first = api.req("GET", path, params={"limit": 2})
    for i in range(4):
        api.req("PUT", f"{path}/l{i}", lease(f"l{i}", "2025-01-01T00:00:10.000000Z"))
    api.req("DELETE", f"{path}/l3")
    api.req("POST", path, lease("l2a", "2025-01-01T00:00:10.000000Z"), ok=201)
    rest = api.req("GET", path, params={"limit": 2, "continue": first["metadata"]["continue"]})
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert first["items"] + rest["items"] == whole["items"]
    assert "continue" not in rest["metadata"]
    assert store.log_rows() == rows  # none of it on disk
