"""The real image, built from the cached rootfs, boots under QEMU and becomes a cluster (issue 14).

One build per test session (`pikube image build` with the rootfs cache; the
rootfs itself is built once when missing). Each test boots its own copy of the
image, grown to a 4 GiB "card", preseeded with a pikube.yaml on the FAT as a user
would, under `qemu-system-aarch64 -M virt` with 1 GB of RAM, the image's own
kernel and initramfs, and user-mode networking that reaches nothing but loopback
forwards. TCG emulation is slow: timeouts are generous, and every wait is on a
condition, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.runtime.localimages import BUSYBOX_IMAGE  # the image the board's agent makes itself
from pikube.dev import qemu
from pikube.dev.localmaster import RunningMaster, start_master
from tests.conftest import require

# The build (a cold rootfs is 20-30 minutes) happens in the first test's setup; each boot takes minutes on TCG.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]
CARD = 4 << 30
BOOT_TIMEOUT = 600.0  # TCG on two shared cores: the master board takes a few minutes to be Ready


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


def card(built: Path, dest: Path, pikube_yaml: str) -> Path:
    return qemu.card(built, dest, pikube_yaml, CARD)


def boot(img: Path, work: Path, ports: tuple[int, ...], host_service: tuple[str, int] | None = None) -> qemu.Vm:
    return qemu.Vm(image=img, workdir=work / "vm", guest_ports=ports, host_service=host_service).start()


def wait_until(what: str, check: object, timeout: float, interval: float = 2.0) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()  # type: ignore[operator]
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not after {timeout:.0f} s (last: {last!r})")


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=20s", *args],
                          capture_output=True, text=True, timeout=60)


def node_ready(kubeconfig: Path, name: str) -> bool:
    out = kubectl(kubeconfig, "get", "node", name, "-o", "json")
    if out.returncode != 0:
        return False
    conds = json.loads(out.stdout)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_a_card_preseeded_as_master_boots_into_a_one_board_cluster(built_image: Path, tmp_path: Path) -> None:
    key, pub = qemu.keypair(tmp_path)
    img = card(built_image, tmp_path, f"""# written by the test, as pikube flash would
version: 1
hostname: pi-master
role: master
ssh:
  authorized_keys:
    - {pub}
timezone: Europe/London
""")
    vm = boot(img, tmp_path, (22, 6443))
    try:
        ssh = qemu.Ssh(port=vm.ports[22], key=key, known_hosts=tmp_path / "known_hosts")
        login = vm.wait_console(r"login:", BOOT_TIMEOUT)
        ssh.wait(BOOT_TIMEOUT)
        assert ssh.run("hostname").stdout.strip() == "pi-master"
        ssh.run("systemctl is-system-running --wait", check=False, timeout=BOOT_TIMEOUT)
        assert ssh.run("systemctl --failed --no-legend --plain").stdout.strip() == ""
        assert ssh.run("readlink /etc/localtime").stdout.strip().endswith("Europe/London")
        # first boot grew the root file system to the card, and each board has its own identity
        root_bytes = int(ssh.run("df -B1 --output=size / | tail -1").stdout)
        assert root_bytes > 3 * 2**30
        assert ssh.run("cat /etc/machine-id").stdout.strip()
        assert "ssh_host_ed25519_key" in ssh.run("ls /etc/ssh").stdout
        assert ssh.run("findmnt -n -o SOURCE /boot/firmware").stdout.strip().endswith("vda1")
        record = wait_until("first boot's record", lambda: json.loads(ssh.run(
            "cat /var/lib/pikube/firstboot.json").stdout or "{}").get("result") in ("applied", "failed"),
            BOOT_TIMEOUT)
        status = json.loads(ssh.run("cat /var/lib/pikube/firstboot.json").stdout)
        assert record and status["result"] == "applied", status
        steps = {st["name"]: st["status"] for st in status["steps"]}
        assert steps["hostname"] == "done" and steps["timezone"] == "done" and steps["role"] == "done", steps
        assert "pikube firstboot: applying" in ssh.run("journalctl -b -u pikube-firstboot --no-pager").stdout
        # the admin kubeconfig, pointed at the forwarded API port
        kubeconfig = tmp_path / "admin.kubeconfig"
        text = wait_until("the admin kubeconfig", lambda: ssh.run(
            "cat /etc/pikube/admin.kubeconfig", check=False).stdout, BOOT_TIMEOUT)
        assert isinstance(text, str)
        server = next(line.split("server:", 1)[1].strip() for line in text.splitlines() if "server:" in line)
        kubeconfig.write_text(text.replace(server, f"https://127.0.0.1:{vm.ports[6443]}"))
        wait_until("pi-master Ready", lambda: node_ready(kubeconfig, "pi-master"), BOOT_TIMEOUT)
        ready_at = time.monotonic() - vm.started
        run = kubectl(kubeconfig, "run", "hello", f"--image={BUSYBOX_IMAGE}", "--restart=Never", "--",
                      "sh", "-c", "echo hello from $(uname -m); sleep 3600")
        assert run.returncode == 0, run.stderr
        wait_until("the pod Running", lambda: kubectl(kubeconfig, "get", "pod", "hello", "-o",
                                                      "jsonpath={.status.phase}").stdout == "Running", BOOT_TIMEOUT)
        logs = wait_until("the pod's log", lambda: kubectl(kubeconfig, "logs", "hello").stdout, 120)
        assert logs == "hello from aarch64\n"
        secret = ssh.run("cat /etc/pikube/join-token").stdout.strip().rsplit(".", 1)[1]
        assert secret not in vm.console_text()  # enable-master's join command reached the console redacted
        assert secret not in ssh.run("journalctl -b --no-pager").stdout
        print(f"login prompt {login:.0f} s, node Ready {ready_at:.0f} s after power-on")
    finally:
        vm.stop()


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
