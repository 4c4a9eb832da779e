"""The real image, built from the cached rootfs, boots under QEMU and becomes a cluster (issue 14).

One build per test session (`pikube image build` with the rootfs cache; the
rootfs itself is built once when missing). The master card is
tests/image/conftest.py's `master_board`, shared with test_boot_ansible.py (run
after this file); the worker card is test_boot_worker.py's. Each is a copy of the
image, grown to a 4 GiB "card", preseeded with a pikube.yaml on the FAT as a user
would, under `qemu-system-aarch64 -M virt` with 1 GB of RAM, the image's own
kernel and initramfs, and user-mode networking that reaches nothing but loopback
forwards. TCG emulation is slow: timeouts are generous, and every wait is on a
condition, never a fixed sleep.
"""

from __future__ import annotations

import json
import time

import pytest

from agent.runtime.localimages import BUSYBOX_IMAGE  # the image the board's agent makes itself
from tests.image.conftest import BOOT_TIMEOUT, MasterBoard, kubectl, wait_until

# The build (a cold rootfs is 20-30 minutes) happens in the first test's setup; each boot takes minutes on TCG.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]


def test_a_card_preseeded_as_master_boots_into_a_one_board_cluster(master_board: MasterBoard) -> None:
    vm, ssh = master_board.vm, master_board.ssh
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
    kubeconfig = master_board.ready_kubeconfig()
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
