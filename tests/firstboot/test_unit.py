"""pikube-firstboot.service: what it promises about ordering, its enablement link, and that systemd accepts it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
SYSTEM = ROOT / "image-builder/overlay/etc/systemd/system"
UNIT = SYSTEM / "pikube-firstboot.service"
LINK = SYSTEM / "multi-user.target.wants/pikube-firstboot.service"


def sections() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_it_runs_pikube_firstboot_from_the_image_venv() -> None:
    assert sections()["Service"]["ExecStart"] == "/opt/pikube/venv/bin/pikube firstboot"


def test_ssh_and_the_network_wait_for_the_local_steps_but_never_for_the_role() -> None:
    unit = sections()
    before = unit["Unit"]["Before"].split()
    assert {"ssh.service", "systemd-networkd.service", "network-pre.target"} <= set(before)
    # READY=1 comes before the role step; ordering (not Requires=) lets sshd start even when this fails
    assert unit["Service"]["Type"] == "notify" and unit["Service"]["NotifyAccess"] == "main"
    assert "Requires" not in unit["Unit"] and "RequiredBy" not in unit["Install"]
    assert "network-online.target" in unit["Unit"]["Wants"].split()
    assert "network-online.target" not in unit["Unit"]["After"].split()  # Wi-Fi is configured by this very unit
    assert "local-fs.target" in unit["Unit"]["After"].split()  # /boot/firmware and /var are mounted


def test_it_is_enabled_by_a_relative_link() -> None:
    assert os.readlink(LINK) == "../pikube-firstboot.service"
    assert LINK.resolve() == UNIT.resolve()
    assert sections()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "needs systemd-analyze (Debian's systemd package)")
    assert analyze is not None
    # the image's venv and overlay are not installed on this machine: the same command lines with this
    # interpreter and the overlay's own copy of the condition script
    pending = ROOT / "image-builder/overlay/usr/local/lib/pikube/firstboot-pending"
    text = (UNIT.read_text().replace("/opt/pikube/venv/bin/pikube", f"{sys.executable} -m pikube")
            .replace("/usr/local/lib/pikube/firstboot-pending", str(pending)))
    path = tmp_path / UNIT.name
    path.write_text(text)
    proc = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, check=False)
    problems = [line for line in proc.stderr.splitlines() if UNIT.name in line]
    assert proc.returncode == 0 and not problems, proc.stderr
