"""ansible/site.yml and reset.yml against SSH boards: OpenSSH and paramiko, idempotent, --check changes nothing.

The boards are network namespaces with their own sshd and their own /etc, /var,
/opt... (overlays, see pikube.dev.sshboards); `pi-1` looks like a Raspberry Pi
(device tree model, /boot/firmware/cmdline.txt). The boards' pods run in the
session's Docker engine; the real Debian packages are not installed on them
(prereq_packages: []), and the Pi is not rebooted (raspberrypi_reboot: false).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.provision.conftest import pikube_leftovers, ready_nodes

pytestmark = pytest.mark.integration

BOARDS = ("pi-1", "pi-2", "pi-3")
HOST_PATHS = ("/etc/pikube", "/var/lib/pikube", "/opt/pikube", "/var/cache/pikube", "/etc/sysctl.d/90-pikube.conf",
              "/usr/local/bin/pikube")


def _specs() -> list[Any]:
    from pikube.dev.sshboards import BoardSpec

    return [BoardSpec("pi-1", pi=True), BoardSpec("pi-2"), BoardSpec("pi-3")]


def _inventory(lab: Any, bundle: Path, engine: Any, connection: str) -> dict[str, Any]:
    from pikube.dev import playbooks

    return playbooks.inventory(lab, "pi-1", ["pi-2", "pi-3"], connection=connection, extra_vars={
        "pikube_bundle_dir": str(bundle), "pikube_docker_host": engine.host, "pikube_context": "lab",
        "prereq_packages": [], "raspberrypi_reboot": False})


def _play(lab: Any, playbook: str, inv: dict[str, Any], *args: str) -> Any:
    from pikube.dev import playbooks

    run = playbooks.run_playbook(lab, playbook, inv, *args)
    assert run.returncode == 0 and run.failed == 0, run.output[-6000:]
    assert set(run.recap) == set(BOARDS), run.output[-3000:]
    return run


def _changed_tasks(output: str) -> list[str]:
    """The tasks that reported a change, with the hosts: for readable failures."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.split("]")[0] + "]"
        elif line.startswith("changed:"):
            found.append(f"{task} {line}")
    return found


def _files(lab: Any) -> dict[str, float]:
    """Every file and directory on the boards' own layers, files with their mtime: what a playbook changed.

    Ansible's own ~/.ansible (its temporary files) is left out.
    """
    return {str(p): 0.0 if p.is_dir() and not p.is_symlink() else p.lstat().st_mtime
            for name in BOARDS for p in lab[name].upper.rglob("*")
            if not str(p).endswith("/.ansible") and "/.ansible/" not in str(p)}


def test_site_with_openssh_is_idempotent_checkable_and_reset_leaves_nothing(
        ssh_lab: Any, provision_bundle: Path, docker_engine: Any) -> None:
    from pikube.dev import playbooks

    lab = ssh_lab(_specs())
    inv = _inventory(lab, provision_bundle, docker_engine, "ssh")
    kubeconfig = playbooks.kubeconfig(lab)
    before = _files(lab)

    # --check on fresh boards: it reports what it would do and does none of it.
    checked = _play(lab, "site.yml", inv, "--check")
    assert checked.changed > 0
    assert _files(lab) == before
    assert not kubeconfig.exists()

    first = _play(lab, "site.yml", inv)
    assert first.changed > 0
    assert ready_nodes(kubeconfig, "lab") == dict.fromkeys(BOARDS, "True")
    pi, other = lab["pi-1"], lab["pi-2"]
    cmdline = pi.path("/boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.rstrip().endswith("cgroup_enable=cpuset cgroup_enable=memory")
    assert not other.path("/boot/firmware").exists()
    for name in BOARDS:
        assert lab.run(name, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
        assert lab[name].path("/etc/sysctl.d/90-pikube.conf").exists()
        assert lab.run(name, ["/usr/local/bin/pikube", "--version"]).stdout.split() == ["pikube", "0.1.0"]
    for path in HOST_PATHS:  # the machine itself: untouched
        assert not Path(path).exists(), path

    again = _play(lab, "site.yml", inv)
    assert again.changed == 0, _changed_tasks(again.output)

    settled = _files(lab)
    rechecked = _play(lab, "site.yml", inv, "--check")
    assert rechecked.changed == 0, _changed_tasks(rechecked.output)
    # (the running services keep writing their data and logs under /var/lib/pikube)
    assert {k: v for k, v in _files(lab).items() if "/var/lib/pikube/" not in k} == {
        k: v for k, v in settled.items() if "/var/lib/pikube/" not in k}

    reset = _play(lab, "reset.yml", inv)
    assert reset.changed > 0
    for name in BOARDS:
        assert pikube_leftovers(lab, name) == [], name
    assert _play(lab, "reset.yml", inv).changed == 0


def test_site_with_paramiko_brings_the_cluster_up(ssh_lab: Any, provision_bundle: Path, docker_engine: Any) -> None:
    from pikube.dev import playbooks

    lab = ssh_lab(_specs())
    inv = _inventory(lab, provision_bundle, docker_engine, "paramiko")
    first = _play(lab, "site.yml", inv)
    assert "paramiko" in (lab.dir / "inventory.yml").read_text()
    assert first.changed > 0
    assert ready_nodes(playbooks.kubeconfig(lab), "lab") == dict.fromkeys(BOARDS, "True")
    assert _play(lab, "site.yml", inv).changed == 0


@pytest.mark.parametrize("connection", ["ssh", "paramiko"])
def test_a_changed_host_key_stops_the_board(
        ssh_lab: Any, provision_bundle: Path, docker_engine: Any, connection: str) -> None:
    """Host keys are really checked, with both connections: a wrong key in known_hosts makes the board unreachable."""
    from pikube.dev import playbooks, sshboards

    lab = ssh_lab([sshboards.BoardSpec("pi-1")])
    impostor = sshboards.keygen(lab.dir / "impostor", "impostor")
    lab.known_hosts.write_text(f"{lab['pi-1'].address} {impostor}\n")
    inv = playbooks.inventory(lab, "pi-1", [], connection=connection,
                              extra_vars={"pikube_bundle_dir": str(provision_bundle)})
    run = playbooks.run_playbook(lab, "site.yml", inv)
    assert run.returncode != 0
    assert run.recap["pi-1"].unreachable == 1, run.output[-3000:]
    assert any(why in run.output for why in ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed",
                                             "host key mismatch")), run.output[-3000:]
    assert not lab["pi-1"].path("/opt/pikube").exists()
