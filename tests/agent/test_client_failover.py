"""The agent's API client fails over between masters: a request that cannot reach one goes to the next it knows,
and the masters it knows come from the `kubernetes` Endpoints, where every live master lists itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.client import ApiClient, ConnectionFailed
from core.kubeconfig import read_kubeconfig
from pikube.dev.localmaster import RunningMaster, free_port, start_master

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMaster]:
    m = start_master(tmp_path_factory.mktemp("failover") / "data")
    yield m
    m.stop()


def client(m: RunningMaster, server: str) -> ApiClient:
    cfg = dataclasses.replace(read_kubeconfig(m.kubeconfig), server=server)
    return ApiClient(cfg, Path(m.ca), timeout=3)


def test_an_unreachable_master_is_skipped_for_the_next(master: RunningMaster) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    api = client(master, dead)
    try:
        with pytest.raises(ConnectionFailed):  # knowing no other master, it says so
            api.request("GET", "/version")
        api.set_servers([master.url])
        assert api.request("GET", "/version").status_code == 200
        assert api.server == master.url  # and stays there
        assert api.master_urls() == [master.url]  # the master lists itself in default/kubernetes
    finally:
        api.close()


def test_a_report_goes_to_every_master_that_answers(master: RunningMaster) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    api = client(master, master.url)
    try:
        api.set_servers([master.url, dead])
        assert api.to_every_master("GET", "/version", None) == 1  # the live one took it; the dead one is skipped
    finally:
        api.close()
    alone = client(master, dead)  # knowing only a dead master: it says so
    try:
        with pytest.raises(ConnectionFailed, match=dead):
            alone.to_every_master("GET", "/version", None)
    finally:
        alone.close()
