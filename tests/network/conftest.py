"""Three simulated boards, each running a real `pikube agent --pod-network bridge` in its namespace, one master.

One cluster per backend, shared by a test module (module-scoped, parametrised by
backend): boards `b1`..`b3` and a `client` namespace (no agent) on a fresh test
LAN made by `pikube.dev.boards`, the master in the root namespace on the LAN's
host address, pods in the session's Docker engine. The root namespace gets no
route to the pod or service ranges (checked at the end); boards have no route
out of the machine. Whatever happens, the agents are stopped, their containers
removed and the LAN with every namespace on it deleted.

The lab itself is `pikube.dev.netlab` (the network benchmark brings up the same
one); this module adds the pytest fixture, records each lab's run id with the
session's leftover check, and re-exports the lab's helpers the tests use.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pikube.dev.netlab import (
    BACKENDS,
    BOARDS,
    HTTP_PORT,
    HTTPD,
    Images,
    NetCluster,
    root_routes,
    run,
    wait_for,
)
from pikube.dev.netlab import check_root_untouched as assert_root_untouched
from pikube.dev.netlab import cluster_up as lab_up
from tests.conftest import HARNESS_MADE, require

__all__ = ["BACKENDS", "BOARDS", "HTTPD", "HTTP_PORT", "NetCluster", "assert_root_untouched", "cluster_up",
           "net_cluster", "new_name", "root_routes", "run", "wait_for"]


def _require_tools() -> None:
    for tool in ("ip", "nft", "nsenter", "docker"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")


@contextlib.contextmanager
def cluster_up(backend: str, workdir: Path, docker_host: str, docker: Any, images: Images,
               board_names: tuple[str, ...] = BOARDS,
               master_flags: Callable[[Any], list[str]] | None = None) -> Iterator[NetCluster]:
    """`pikube.dev.netlab.cluster_up`, its run recorded for the session's check that nothing is left."""
    with lab_up(backend, workdir, docker_host, docker, images, board_names, on_run=HARNESS_MADE.runs.add,
                master_flags=master_flags) as c:
        yield c


@pytest.fixture(scope="module", params=BACKENDS)
def net_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, docker_engine: Any,
                docker_client: Any, dev_images: Any) -> Iterator[NetCluster]:
    _require_tools()
    backend = str(request.param)
    with cluster_up(backend, tmp_path_factory.mktemp(f"net-{backend}"), docker_engine.host, docker_client,
                    dev_images) as c:
        yield c


def new_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(2)}"
