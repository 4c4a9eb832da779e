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
import re
import secrets
import shutil
import subprocess
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
from tests.master.conftest import kubectl_path

__all__ = ["BACKENDS", "BOARDS", "HTTPD", "HTTP_PORT", "NetCluster", "assert_root_untouched", "cluster_up",
           "kubectl", "kubectl_cluster", "net_cluster", "new_name", "root_routes", "run", "wait_for"]


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


@contextlib.contextmanager
def kubectl_cluster(workdir: Path, docker_engine: Any, docker: Any,
                    images: Images) -> Iterator[tuple[NetCluster, Path]]:
    """A host-gw lab and an admin kubeconfig for it, for tests that drive it with real kubectl."""
    with cluster_up("host-gw", workdir, docker_engine.host, docker, images) as c:
        config = c.workdir / "kubeconfig"
        config.write_text(re.sub(r"server: https://\S+", f"server: {c.url}", c.master.kubeconfig.read_text()))
        yield c, config


def kubectl(config: Path, which: str, *args: str, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    """kubectl `which` ("old" 1.20, "new" 1.33) with `config`; unless `check` is off, it must succeed."""
    proc = subprocess.run([kubectl_path(which), "--kubeconfig", str(config), *args], capture_output=True, text=True,
                          timeout=60, input=input, env={"HOME": str(config.parent), "PATH": "/usr/bin:/bin"})
    assert not check or proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc


def new_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(2)}"
