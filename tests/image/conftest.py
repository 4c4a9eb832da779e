"""Fixtures of the image tests that boot it: the image built once, and one master board shared by two files.

Booting under TCG costs minutes, so the master card is booted once per session:
tests/image/test_boot.py checks its first boot, tests/image/test_boot_ansible.py
then runs the playbooks against the same board (it reboots it; pytest runs that
file second). Each of them also works alone: `MasterBoard.ready_kubeconfig` waits
for first boot to finish whichever test asks first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from pikube.dev import qemu
from tests.conftest import require
from tests.provision.conftest import provision_bundle as provision_bundle  # the wheel bundle, for the playbooks

CARD = 4 << 30
BOOT_TIMEOUT = 600.0  # TCG on two shared cores: the master board takes a few minutes to be Ready
T = TypeVar("T")


@pytest.fixture(scope="session")
def built_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pikube.image import recipe
    from pikube.image.build import Options, build, default_cache
    from pikube.image.progress import Progress

    require(os.geteuid() == 0, "building the image needs root (mmdebstrap, chroot)")
    missing = [t for t in ("mmdebstrap", "qemu-aarch64-static", "qemu-system-aarch64", "mcopy", "mkfs.vfat",
                           "bmaptool", "sfdisk", "ssh") if shutil.which(t) is None]
    require(not missing, f"missing {missing}: scripts/install-deps.sh installs them")
    r = recipe.load()
    out = tmp_path_factory.mktemp("image") / "pikube.img"
    cache = Path(os.environ.get("PIKUBE_IMAGE_CACHE") or default_cache())
    build(r, Options(board="rpi4", out=out, cache=cache, source=r.root.parent, zstd_level=None), Progress())
    return out


def wait_until(what: str, check: Callable[[], T], timeout: float, interval: float = 2.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not after {timeout:.0f} s (last: {last!r})")


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=20s", *args],
                          capture_output=True, text=True, timeout=60)


def node_ready(kubeconfig: Path, name: str, context: str | None = None) -> bool:
    out = kubectl(kubeconfig, *([f"--context={context}"] if context else []), "get", "node", name, "-o", "json")
    if out.returncode != 0:
        return False
    conds = json.loads(out.stdout)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


@dataclass
class MasterBoard:
    """The card preseeded as master (hostname pi-master), booted; `dir` holds its key, known_hosts and disk."""
    vm: qemu.Vm
    ssh: qemu.Ssh
    key: Path
    dir: Path

    @property
    def known_hosts(self) -> Path:
        return self.ssh.known_hosts

    def server(self) -> str:
        """The API server's address from this machine: the forwarded port on loopback."""
        return f"https://127.0.0.1:{self.vm.ports[6443]}"

    def ready_kubeconfig(self) -> Path:
        """The board's admin kubeconfig pointed at the forwarded API port, once the node is Ready."""
        self.ssh.wait(BOOT_TIMEOUT)
        text = wait_until("the admin kubeconfig", lambda: self.ssh.run(
            "cat /etc/pikube/admin.kubeconfig", check=False).stdout, BOOT_TIMEOUT)
        server = next(line.split("server:", 1)[1].strip() for line in text.splitlines() if "server:" in line)
        kubeconfig = self.dir / "admin.kubeconfig"
        kubeconfig.write_text(text.replace(server, self.server()))
        wait_until("pi-master Ready", lambda: node_ready(kubeconfig, "pi-master"), BOOT_TIMEOUT)
        return kubeconfig


@pytest.fixture(scope="session")
def master_board(built_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterBoard]:
    work = tmp_path_factory.mktemp("master-board")
    key, pub = qemu.keypair(work)
    img = qemu.card(built_image, work, f"""# written by the test, as pikube flash would
version: 1
hostname: pi-master
role: master
ssh:
  authorized_keys:
    - {pub}
timezone: Europe/London
""", CARD)
    vm = qemu.Vm(image=img, workdir=work / "vm", guest_ports=(22, 6443)).start()
    try:
        yield MasterBoard(vm, qemu.Ssh(port=vm.ports[22], key=key, known_hosts=work / "known_hosts"), key, work)
    finally:
        vm.stop()
