"""Fixtures for the status page: an in-process store and catalog with the page's Flask app on top.

Objects are created through `Handlers` (the API's own defaulting and
validation), so the page sees what a real master stores; node status is then
written straight into the store, as an agent's PATCH would leave it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from core.settings import MasterSettings
from master import bootstrap
from master.registry.catalog import Catalog, builtin_resources
from master.registry.context import ApiContext
from master.registry.verbs import Handlers
from master.store.sqlite import SqliteStore
from pikube.run.master import page_prefixes
from web.app import create_web_app

Obj = dict[str, Any]
TOKEN = "correct-horse-battery-staple"


def make_ctx(path: Path, **settings: Any) -> ApiContext:
    store = SqliteStore(path / "state.db")
    ctx = ApiContext(settings=MasterSettings(data_dir=path, **settings), store=store,
                     catalog=Catalog(builtin_resources()))
    bootstrap.ensure_defaults(ctx)
    return ctx


def page_app(ctx: ApiContext, stopping: threading.Event) -> Flask:
    """The page over this master's store, wired as `pikube master` wires it."""
    return create_web_app(ctx.settings, ctx.store, page_prefixes(ctx.catalog), stopping)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ApiContext]:
    c = make_ctx(tmp_path)
    yield c
    c.store.close()  # type: ignore[attr-defined]


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    ev = threading.Event()
    yield ev
    ev.set()


@pytest.fixture
def app(ctx: ApiContext, stopping: threading.Event) -> Flask:
    return page_app(ctx, stopping)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Objects:
    """Creates objects as the API would, for tests that need a populated cluster."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.h = Handlers(ctx)

    def create(self, plural: str, ns: str, body: Obj, group: str = "", version: str = "v1") -> Obj:
        rt = self.ctx.catalog.lookup(group, version, plural)
        assert rt is not None
        return self.h.create(rt, ns, body)

    def set_status(self, plural: str, ns: str, name: str, status: Obj, group: str = "") -> None:
        rt = self.ctx.catalog.lookup(group, "v1", plural)
        assert rt is not None

        def fn(obj: Obj | None) -> Obj | None:
            assert obj is not None
            return {**obj, "status": status}

        self.ctx.store.mutate(rt.key(ns, name), fn)

    def node(self, name: str, *, ready: str = "True", cpu: str = "4", memory: str = "4Gi", address: str = "",
             annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> None:
        self.create("nodes", "", {"metadata": {"name": name, "annotations": annotations or {},
                                               "labels": {"kubernetes.io/arch": "arm64", **(labels or {})}}})
        alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
        self.set_status("nodes", "", name, {
            "capacity": alloc, "allocatable": alloc,
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else
                            "NodeStatusUnknown", "message": "kubelet is posting ready status" if ready == "True"
                            else "Kubelet stopped posting node status."}],
            "addresses": [{"type": "InternalIP", "address": address}] if address else [],
            "nodeInfo": {"architecture": "arm64", "kubeletVersion": "v1.29.0-pikube.0.1.0",
                         "containerRuntimeVersion": "docker://20.10.24", "kernelVersion": "6.1.0-rpi7-rpi-v8",
                         "osImage": "Debian GNU/Linux 12 (bookworm)"}})

    def pod(self, name: str, node: str = "", *, ns: str = "default", cpu: str = "", memory: str = "",
            phase: str = "Running", ready: bool = True, restarts: int = 0, waiting: str = "",
            container: Obj | None = None) -> None:
        """A pod (bound to `node` when given) whose one container is running, or waiting for `waiting`."""
        requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
        body: Obj = {"name": "app", "image": "busybox", "resources": {"requests": requests}, **(container or {})}
        self.create("pods", ns, {"metadata": {"name": name}, "spec": {"containers": [body]}})
        rt = self.ctx.catalog.lookup("", "v1", "pods")
        assert rt is not None
        if node:
            self.ctx.store.mutate(rt.key(ns, name), lambda o: {**(o or {}), "spec": {**(o or {})["spec"],
                                                                                    "nodeName": node}})
        state: Obj = {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
        self.set_status("pods", ns, name, {"phase": phase, "podIP": "10.244.1.5", "containerStatuses": [
            {"name": "app", "ready": ready, "restartCount": restarts, "state": state, "image": "busybox"}]})


@pytest.fixture
def objects(ctx: ApiContext) -> Objects:
    return Objects(ctx)


def wait_for_page(url: str) -> None:
    """The page starts after the API (once the controllers run): wait until it answers."""
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url.rstrip("/") + "/static/status.css", timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
