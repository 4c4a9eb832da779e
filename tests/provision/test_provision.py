"""`pikube provision` against SSH boards: the cluster comes up, kubeconfig merged; bad boards fail alone, clearly.

Among the boards: one whose sudo wants a password, one whose host key is not the
one in known_hosts, and an address where no board answers. Each gets exactly one
FAILED line in the summary, and the good boards become a three-node cluster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.provision.conftest import pikube_leftovers, ready_nodes

pytestmark = pytest.mark.integration

GOOD = ("pi-1", "pi-2", "pi-3")


def _provision(lab: Any, *args: str, known_hosts: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pikube", "provision", "--ssh-key", str(lab.key),
            "--known-hosts", str(known_hosts or lab.known_hosts), "--connect-timeout", "5", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


def _row(out: str, address: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"pi@{address} ")]


def test_provision_brings_up_the_good_boards_and_says_why_the_others_failed(
        ssh_lab: Any, provision_bundle: Path, docker_engine: Any) -> None:
    from pikube.dev.sshboards import BoardSpec, Sudo, keygen

    lab = ssh_lab([*(BoardSpec(n) for n in GOOD), BoardSpec("pi-4", sudo=Sudo.NONE), BoardSpec("pi-5")])
    impostor = keygen(lab.dir / "impostor", "impostor")
    pi5 = lab["pi-5"].address
    lines = [line for line in lab.known_hosts.read_text().splitlines() if not line.startswith(f"{pi5} ")]
    lab.known_hosts.write_text("\n".join([*lines, f"{lab['pi-5'].address} {impostor}"]) + "\n")
    kubeconfig = lab.dir / "laptop" / "config"
    kubeconfig.parent.mkdir()
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "home",
             "clusters": [{"name": "home", "cluster": {"server": "https://192.0.2.1:6443"}}],
             "users": [{"name": "home", "user": {"token": "t"}}],
             "contexts": [{"name": "home", "context": {"cluster": "home", "user": "home"}}]}
    kubeconfig.write_text(yaml.safe_dump(other))
    nowhere = lab.unused_address()
    args = ["--bundle", str(provision_bundle), "--kubeconfig", str(kubeconfig), "--context", "lab",
            "--docker-host", docker_engine.host, "--master", f"pi@{lab['pi-1'].address}",
            *(a for n in ("pi-2", "pi-3", "pi-4", "pi-5") for a in ("--worker", f"pi@{lab[n].address}")),
            "--worker", f"pi@{nowhere}"]

    first = _provision(lab, *args)
    out = first.stdout
    assert first.returncode == 1, out + first.stderr
    assert "3 of 6 boards failed" in first.stderr
    for name, role in zip(GOOD, ("master", "worker", "worker"), strict=True):
        (row,) = _row(out, lab[name].address)
        assert role in row and "FAILED" not in row and ("Ready" in row), row
    (sudo,) = [line for line in out.splitlines() if "FAILED" in line and lab["pi-4"].address in line]
    assert "a password is required" in sudo and "--ask-sudo-password" in sudo
    (hostkey,) = [line for line in out.splitlines() if "FAILED" in line and lab["pi-5"].address in line]
    assert "does not match" in hostkey and "ssh-keygen -R" in hostkey
    (unreachable,) = [line for line in out.splitlines() if "FAILED" in line and nowhere in line]
    assert f"cannot reach {nowhere}:22" in unreachable
    for name in ("pi-4", "pi-5"):  # nothing was installed where the login or sudo failed
        assert not lab[name].path("/opt/pikube/venv").exists()

    merged = yaml.safe_load(kubeconfig.read_text())
    assert merged["current-context"] == "lab"
    assert {c["name"] for c in merged["contexts"]} == {"home", "lab"}
    assert (kubeconfig.stat().st_mode & 0o777) == 0o600
    assert ready_nodes(kubeconfig, "lab") == dict.fromkeys(GOOD, "True")

    again = _provision(lab, *args)
    for name in GOOD:
        (row,) = _row(again.stdout, lab[name].address)
        assert "nothing changed" in row, row

    reset = _provision(lab, "--reset", *(f"pi@{lab[n].address}" for n in GOOD))
    assert reset.returncode == 0, reset.stdout + reset.stderr
    for name in GOOD:
        assert pikube_leftovers(lab, name) == [], name


def test_accept_new_host_keys_prints_and_records_the_fingerprint(
        ssh_lab: Any, provision_bundle: Path, docker_engine: Any) -> None:
    from pikube.dev.sshboards import BoardSpec

    lab = ssh_lab([BoardSpec("pi-1")])
    board = lab["pi-1"]
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(board.dir / "ssh_host_ed25519_key.pub")],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    known = lab.dir / "empty_known_hosts"
    args = ["--bundle", str(provision_bundle), "--kubeconfig", str(lab.dir / "kc"), "--docker-host",
            docker_engine.host, "--master", f"pi@{board.address}"]

    refused = _provision(lab, *args, known_hosts=known)
    assert refused.returncode == 1
    (row,) = _row(refused.stdout, board.address)
    assert "is not in" in row and fingerprint in row and "--accept-new-host-keys" in row
    assert not known.exists()

    accepted = _provision(lab, *args, "--accept-new-host-keys", known_hosts=known)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert f"new host key ED25519 {fingerprint}" in accepted.stdout
    assert known.read_text().split() == [board.address, *board.host_key.split()]
    assert ready_nodes(lab.dir / "kc", "pikube") == {"pi-1": "True"}


def test_sudo_with_a_password(ssh_lab: Any, provision_bundle: Path, docker_engine: Any) -> None:
    """A board whose sudo asks for pi's password (Debian's default): a wrong one is refused, the right one works."""
    from pikube.dev.sshboards import SUDO_PASSWORD, BoardSpec, Sudo

    lab = ssh_lab([BoardSpec("pi-1", sudo=Sudo.PASSWORD)])
    board = lab["pi-1"]
    password = lab.dir / "sudo-password"
    args = ["--bundle", str(provision_bundle), "--kubeconfig", str(lab.dir / "kc"), "--docker-host",
            docker_engine.host, "--master", f"pi@{board.address}", "--sudo-password-file", str(password)]

    password.write_text("not-the-password\n")
    wrong = _provision(lab, *args)
    assert wrong.returncode == 1
    (row,) = _row(wrong.stdout, board.address)
    assert "refused pi with that password" in row, row
    assert not board.path("/opt/pikube/venv").exists()

    password.write_text(SUDO_PASSWORD + "\n")
    right = _provision(lab, *args)
    assert right.returncode == 0, right.stdout + right.stderr
    assert ready_nodes(lab.dir / "kc", "pikube") == {"pi-1": "True"}
