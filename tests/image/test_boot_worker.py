"""A card written by `pikube flash` and preseeded as worker boots and joins a master on the host (issues 14, 15).

Runs after test_boot.py and test_boot_ansible.py (which stops the shared master
board, so this VM has the cores to itself).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pikube.dev import qemu
from pikube.dev.localmaster import RunningMaster, start_master
from tests.image.conftest import BOOT_TIMEOUT, CARD, node_ready, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]


def boot(img: Path, work: Path, ports: tuple[int, ...], host_service: tuple[str, int] | None = None) -> qemu.Vm:
    return qemu.Vm(image=img, workdir=work / "vm", guest_ports=ports, host_service=host_service).start()


def test_a_card_flashed_and_preseeded_as_worker_joins_a_master_on_the_host(built_image: Path, tmp_path: Path) -> None:
    """The whole journey (issues 14 and 15): `pikube flash` writes the image and its pikube.yaml to a card (a
    4 GiB file standing for one), the card boots, first boot applies it, and the worker joins a master."""
    from core.jointoken import ca_hash
    from master.tokens import TokenStore

    m: RunningMaster = start_master(tmp_path / "master", extra_args=("--tls-san", qemu.GUEST_GATEWAY_SERVICE))
    try:
        token = TokenStore(m.data_dir / "tokens.json", ca_hash(m.ca.read_bytes())).create(3600, "image test")
        key, _pub = qemu.keypair(tmp_path)
        sd = tmp_path / "sdcard.bin"
        with sd.open("wb") as f:
            f.truncate(CARD)
        flash = subprocess.run(
            [sys.executable, "-m", "pikube.cli", "flash", str(built_image), str(sd), "--yes",
             "--hostname", "pi-worker-1", "--role", "worker", "--master", f"{qemu.GUEST_GATEWAY_SERVICE}:{m.port}",
             "--token", token, "--ssh-key", str(key.with_suffix(".pub")), "--timezone", "UTC"],
            capture_output=True, text=True, timeout=600)
        assert flash.returncode == 0, flash.stderr
        assert sd.stat().st_size == CARD
        vm = boot(sd, tmp_path, (22,), host_service=("127.0.0.1", m.port))
        try:
            wait_until("pi-worker-1 Ready", lambda: node_ready(m.kubeconfig, "pi-worker-1"), BOOT_TIMEOUT, 3)
            ssh = qemu.Ssh(port=vm.ports[22], key=key, known_hosts=tmp_path / "known_hosts")
            ssh.wait(120)
            assert ssh.run("hostname").stdout.strip() == "pi-worker-1"
            fat = ssh.run("cat /boot/firmware/pikube.yaml").stdout
            assert token not in fat and "pi-worker-1" in fat  # the secret is gone from the card, the rest kept
        finally:
            vm.stop()
    finally:
        m.stop()
