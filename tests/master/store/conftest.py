"""Fixtures for the store tests: a real SQLite store in a temporary directory."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from master.store.sqlite import SqliteStore


def obj(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec)}


def rv(o: dict[str, Any] | None) -> int:
    assert o is not None
    return int(o["metadata"]["resourceVersion"])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db_path)
    yield s
    s.close()


@pytest.fixture
def etcd_server(tmp_path: Path) -> Iterator[Any]:
    """A real etcd of the test's own (compaction is etcd-wide, so tests cannot share one)."""
    from pikube.dev.etcd import EtcdMissing, start_etcd
    from tests.conftest import require

    try:
        server = start_etcd(tmp_path / "etcd")
    except EtcdMissing as exc:
        require(False, str(exc))
        raise
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "etcd"])
def any_store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Any]:
    """The same tests on both backends: SQLite, and etcd (a prefix of this test's own)."""
    if request.param == "sqlite":
        s: Any = SqliteStore(db_path)
    else:
        from master.store.etcd import EtcdStore

        server = request.getfixturevalue("etcd_server")
        s = EtcdStore([server.client_url], prefix=f"/t-{secrets.token_hex(6)}")
    yield s
    s.close()


@pytest.fixture
def sqlite_store(db_path: Path) -> Iterator[SqliteStore]:
    """The SQLite store, for tests of what only it does (its log, volatile writes kept in memory)."""
    s = SqliteStore(db_path)
    yield s
    s.close()
