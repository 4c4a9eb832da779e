"""Fixtures for the provisioning tests: the wheel bundle, and SSH boards in network namespaces.

Every lab is torn down after its test, pass or fail: the boards' pikube services
(`pikube reset` is not trusted for that), their pods in the session's Docker
engine, their sshd and ssh clients, namespaces and directories; a test fails if
anything is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HARNESS_MADE, require

BIN = Path(sys.executable).parent


def require_ssh_boards() -> None:
    require(os.geteuid() == 0, "needs root for network namespaces")
    require(Path("/usr/sbin/sshd").exists(), "needs Debian's openssh-server (/usr/sbin/sshd)")
    require(shutil.which("sudo") is not None, "needs Debian's sudo on the boards")
    for tool in ("nsenter", "unshare", "ssh-keygen", "nft", "kubectl"):
        require(shutil.which(tool) is not None, f"needs {tool}")
    require((BIN / "ansible-playbook").exists(), "needs ansible-core in the venv (pip install -e '.[provision]')")


@pytest.fixture(scope="session")
def provision_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel bundle of this source tree (pikube's wheel, aarch64 and x86_64 dependency wheels)."""
    from pikube.provision import bundle

    require_ssh_boards()
    dest = tmp_path_factory.mktemp("bundle")
    try:
        bundle.make(dest)
    except bundle.BundleError as exc:
        require(False, f"cannot make the wheel bundle (pip download needs the package index or its cache): {exc}")
    return dest


def pikube_leftovers(lab: Any, name: str) -> list[str]:
    """What pikube left on one board: processes, network devices, nftables tables, files and units."""
    from core import processes
    from pikube.dev import boards

    found = []
    for pid in processes.pids_in_netns(boards.netns_file(lab[name].board.netns)):
        argv = processes.cmdline(pid)
        if argv[1:3] == ["-m", "pikube"] or any(a.endswith("/bin/pikube") for a in argv):
            found.append(f"process {pid} {' '.join(argv)}")
    links = [line.split(":")[1].strip().split("@")[0]
             for line in lab.run(name, ["ip", "-o", "link", "show"]).stdout.splitlines()]
    found += [f"link {link}" for link in links if link not in ("lo", "eth0")]
    found += [f"nft {t}" for t in lab.run(name, ["nft", "list", "tables"]).stdout.splitlines() if t.strip()]
    for path in ("/etc/pikube/node.json", "/etc/pikube/units", "/etc/pikube/admin.kubeconfig", "/var/lib/pikube/master",
                 "/var/lib/pikube/agent", "/etc/systemd/system/pikube-master.service",
                 "/etc/systemd/system/pikube-agent.service", "/opt/pikube/venv", "/usr/local/bin/pikube"):
        if lab[name].path(path).exists() or lab[name].path(path).is_symlink():
            found.append(f"file {path}")
    data = lab[name].data_dir  # pikube_data_dir, outside the board's overlay (SshBoard.data_dir)
    found += [f"file {p}" for p in (data / "master", data / "agent") if p.exists()]
    return found


@pytest.fixture
def ssh_lab(tmp_path: Path, docker_engine: Any, docker_client: Any) -> Iterator[Callable[..., Any]]:
    """A factory: `ssh_lab([BoardSpec("pi-1"), ...])` starts SSH boards (an `SshLab`), removed after the test."""
    from pikube.dev import naming, netlab, sshboards
    from pikube.dev.localagent import remove_node_containers

    require_ssh_boards()
    made: list[Any] = []

    def make(specs: Sequence[Any]) -> Any:
        run = naming.new_run_id()
        HARNESS_MADE.runs.add(run)
        lab = sshboards.start(tmp_path / f"lab{len(made)}", specs, run)
        made.append(lab)
        return lab

    yield make
    left = []
    for lab in made:
        names = list(lab.boards)
        left += sshboards.stop(lab)
        for name in names:
            remove_node_containers(docker_client, name)
    netlab.check_root_untouched()
    assert not left, f"the SSH boards left behind: {left}"


def kubectl(kubeconfig: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def ready_nodes(kubeconfig: Path, context: str | None = None) -> dict[str, str]:
    """Node name -> its Ready condition's status, through kubectl and the merged kubeconfig."""
    import json

    args = ["--context", context] if context else []
    proc = kubectl(kubeconfig, *args, "get", "nodes", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return {n["metadata"]["name"]: next((c["status"] for c in n["status"].get("conditions") or []
                                         if c["type"] == "Ready"), "Unknown")
            for n in json.loads(proc.stdout)["items"]}
