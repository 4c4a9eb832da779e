"""Running pikube's playbooks against SSH boards (`pikube.dev.sshboards`) from this machine.

The tests and `bench/provision.py` both need the same things: an inventory of the
boards (the master group and the worker group, as `ansible/inventory.example.yml`
lays them out), an Ansible configuration whose every file (known hosts, control
sockets, temporary files, the merged kubeconfig) lives in the lab's directory,
and the PLAY RECAP read back as numbers. Host keys are checked against the lab's
known_hosts with both connections: OpenSSH reads it through `UserKnownHostsFile`,
paramiko from `~/.ssh/known_hosts`, so HOME points into the lab too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from pikube.dev.sshboards import USER, SshLab

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
_RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                    re.MULTILINE)


class Controller(Protocol):
    """Where a playbook run keeps its files: an SshLab, or any directory with a known_hosts (a QEMU board's)."""

    @property
    def dir(self) -> Path: ...

    @property
    def known_hosts(self) -> Path: ...


@dataclass(frozen=True)
class Recap:
    ok: int
    changed: int
    unreachable: int
    failed: int
    skipped: int


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str
    recap: dict[str, Recap]

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap.values())

    @property
    def failed(self) -> int:
        return sum(r.failed + r.unreachable for r in self.recap.values())


def parse_recap(output: str) -> dict[str, Recap]:
    return {m.group(1): Recap(*(int(m.group(i)) for i in range(2, 7))) for m in _RECAP.finditer(output)}


def kubeconfig(lab: SshLab) -> Path:
    """The controller's kubeconfig the playbook merges the cluster into."""
    return lab.dir / "kubeconfig"


def inventory(lab: SshLab, master: str, workers: Sequence[str], connection: str = "ssh",
              extra_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The inventory of `master` and `workers` as `ansible/inventory.example.yml` lays it out."""
    def host(name: str) -> dict[str, Any]:
        return {"ansible_host": lab[name].address, "pikube_data_dir": str(lab[name].data_dir)}

    cluster_vars: dict[str, Any] = {
        "ansible_user": USER,
        "ansible_connection": connection,
        "ansible_ssh_private_key_file": str(lab.key),
        "ansible_python_interpreter": "/usr/bin/python3",
        "pikube_kubeconfig": str(kubeconfig(lab)),
        **(extra_vars or {}),
    }
    if connection == "ssh":
        cluster_vars["ansible_ssh_common_args"] = (f"-o UserKnownHostsFile={lab.known_hosts} "
                                                   "-o StrictHostKeyChecking=yes")
    return {"pikube_cluster": {
        "children": {"master": {"hosts": {master: host(master)}},
                     "worker": {"hosts": {w: host(w) for w in workers}}},
        "vars": cluster_vars}}


def write_config(lab: Controller) -> Path:
    """An ansible.cfg whose files all live in the lab's directory; its path."""
    home = lab.dir / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    shutil.copy(lab.known_hosts, home / ".ssh" / "known_hosts")
    cfg = lab.dir / "ansible.cfg"
    cfg.write_text("\n".join([
        "[defaults]",
        f"roles_path = {ANSIBLE_DIR / 'roles'}",
        f"local_tmp = {lab.dir / 'ansible-tmp'}",
        "forks = 10",
        "host_key_checking = True",
        "[ssh_connection]",
        "pipelining = True",
        f"control_path_dir = {lab.dir / 'cp'}",
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes",
        "",
    ]))
    return cfg


def run_playbook(lab: Controller, playbook: str, inv: Mapping[str, Any], *args: str, timeout: float = 600,
                 name: str = "inventory") -> PlaybookRun:
    """`ansible-playbook -i INV ansible/PLAYBOOK ARGS` with the lab's configuration; never raises on failure."""
    inv_path = lab.dir / f"{name}.yml"
    inv_path.write_text(yaml.safe_dump(dict(inv), sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(write_config(lab)), "HOME": str(lab.dir / "home"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    env.pop("KUBECONFIG", None)
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv_path),
            str(ANSIBLE_DIR / playbook), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    out = proc.stdout + proc.stderr
    return PlaybookRun(proc.returncode, out, parse_recap(out))
