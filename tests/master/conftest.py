"""Fixtures that start a real `pikube master` over TLS and give tests kubectl and the Python client."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from pikube.dev.localmaster import ROOT, RunningMaster, free_port, start_master
from tests.conftest import require

__all__ = ["ROOT", "RunningMaster", "free_port", "kubectl", "kubectl_path", "start_master"]

KUBECTL_NEW = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"
KUBECTL_OLD = str(ROOT / ".tools/bin/kubectl-1.20")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMaster]:
    m = start_master(tmp_path_factory.mktemp("master") / "data")
    yield m
    m.stop()


def kubectl_path(which: str) -> str:
    path = KUBECTL_NEW if which == "new" else KUBECTL_OLD
    require(os.path.exists(path), f"kubectl {which} not found at {path} (run scripts/install-deps.sh)")
    return path


def kubectl(master: RunningMaster, which: str, *args: str, input: str | None = None,
            check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [kubectl_path(which), "--kubeconfig", str(master.kubeconfig), *args]
    full_env = {**os.environ, "HOME": str(master.data_dir), **(env or {})}
    full_env.pop("KUBECONFIG", None)
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def have_kubectl() -> bool:
    return shutil.which("kubectl") is not None
