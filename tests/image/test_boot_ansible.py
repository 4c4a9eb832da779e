"""ansible/site.yml and reboot.yml against the image booted under QEMU: systemd, the reboot handler (issue 16).

tests/provision runs the playbooks against SSH boards without systemd as PID 1
and with the Debian packages left alone; this file runs them once against the
real image on the master board tests/image/test_boot.py booted (the session's
`master_board`), over SSH through the forwarded port on loopback, as root with
the board's key. The board is made to look like a Raspberry Pi the way
docs/operations.md says (`raspberrypi_model_file` pointing at a file saying so,
since `-M virt` has no Pi device tree), so the cgroup flags go into the image's
own /boot/firmware/cmdline.txt and the handler reboots the board; the test then
checks that it came back, with its services started by systemd, Ready. Then
reboot.yml reboots it again and waits for Ready itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.image.conftest import BOOT_TIMEOUT, MasterBoard, node_ready, wait_until
from tests.provision.conftest import require_ssh_boards

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]
MODEL_FILE = "/etc/pikube-test-model"  # stands in for /sys/firmware/devicetree/base/model
FLAGS = "cgroup_enable=cpuset cgroup_enable=memory"


def _inventory(board: MasterBoard, bundle: Path) -> dict[str, Any]:
    return {"pikube_cluster": {
        "children": {"master": {"hosts": {"pi-master": {"ansible_host": "127.0.0.1",
                                                        "ansible_port": board.vm.ports[22]}}},
                     "worker": {"hosts": {}}},
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(board.key),
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={board.known_hosts} -o StrictHostKeyChecking=yes",
            "pikube_bundle_dir": str(bundle),
            "pikube_kubeconfig": str(board.dir / "kubeconfig"),
            "pikube_context": "qemu",
            "raspberrypi_model_file": MODEL_FILE,
            "pikube_reboot_timeout": int(BOOT_TIMEOUT),
            "raspberrypi_reboot_timeout": int(BOOT_TIMEOUT),
        }}}


def _boot_id(board: MasterBoard) -> str:
    return board.ssh.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()


def _point_at_forwarded_port(kubeconfig: Path, board: MasterBoard) -> None:
    """The merged context names the board's own address (10.0.2.15, inside QEMU's user network)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        if cluster["name"] == "qemu":
            cluster["cluster"]["server"] = board.server()
    kubeconfig.write_text(yaml.safe_dump(config))


def test_site_and_reboot_playbooks_run_against_the_booted_image(
        master_board: MasterBoard, provision_bundle: Path) -> None:
    require_ssh_boards()
    board = master_board
    try:
        _site_then_reboot(board, provision_bundle)
    finally:
        board.vm.stop()  # the shared board's last user: test_boot_worker.py's VM gets the cores


def _site_then_reboot(board: MasterBoard, provision_bundle: Path) -> None:
    from pikube.dev import playbooks

    board.ready_kubeconfig()  # first boot done (whichever test asked first waited for it)
    ssh = board.ssh
    ssh.run(f"printf 'Raspberry Pi 4 Model B Rev 1.5\\0' > {MODEL_FILE}")
    cmdline_before = ssh.run("cat /boot/firmware/cmdline.txt").stdout
    assert "cgroup_enable" not in cmdline_before
    boot_before = _boot_id(board)
    inv = _inventory(board, provision_bundle)

    site = playbooks.run_playbook(board, "site.yml", inv, timeout=3 * BOOT_TIMEOUT)
    assert site.returncode == 0 and site.failed == 0, site.output[-6000:]
    assert "RUNNING HANDLER [raspberrypi : Reboot the Pi for its new kernel command line]" in site.output
    # the flags went onto the image's one cmdline.txt line, and the handler rebooted the board
    cmdline = ssh.run("cat /boot/firmware/cmdline.txt").stdout
    assert cmdline.count("\n") <= 1 and cmdline.split() == [*cmdline_before.split(), *FLAGS.split()]
    boot_after_site = _boot_id(board)
    assert boot_after_site != boot_before
    # systemd brought pikube back (prereq's and the image's units), and the playbook's tasks held
    for unit in ("pikube-master", "pikube-agent", "docker", "systemd-timesyncd"):
        assert ssh.run(f"systemctl is-active {unit}", check=False).stdout.strip() == "active", unit
    assert ssh.run("cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    version = json.loads((provision_bundle / "bundle.json").read_text())["pikube"]
    assert ssh.run("pikube --version").stdout.split() == ["pikube", version]
    kubeconfig = board.dir / "kubeconfig"
    _point_at_forwarded_port(kubeconfig, board)
    wait_until("pi-master Ready after the reboot", lambda: node_ready(kubeconfig, "pi-master", "qemu"),
               BOOT_TIMEOUT)

    reboot = playbooks.run_playbook(board, "reboot.yml", inv, timeout=3 * BOOT_TIMEOUT, name="inventory-reboot")
    assert reboot.returncode == 0 and reboot.failed == 0, reboot.output[-6000:]
    assert _boot_id(board) not in (boot_before, boot_after_site)
    assert node_ready(kubeconfig, "pi-master", "qemu")  # reboot.yml waited for Ready itself
    assert ssh.run("systemctl --failed --no-legend --plain").stdout.strip() == ""
