"""The login: a user (or root) holding the SSH keys from pikube.yaml, and sshd with password login off.

The image has no password anywhere, so the keys are the only way in. Without
`user` they go to root (the image's sshd allows root with a key only); with
`user` a new account is made with `useradd` (through the runner), put in the
admin groups the image has (sudo, adm, systemd-journal, docker), and given
sudo without a password (it has none to type), as Raspberry Pi OS does for
its first user. The keys are a marked block in `~/.ssh/authorized_keys`, so
keys a user adds by hand later survive a changed pikube.yaml being applied
again; modes are sshd's StrictModes: 0700 for ~/.ssh, 0600 for the file, both
owned by the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.boardconfig import BoardConfig
from pikube.firstboot.host import Host, read_text, remove, write_file
from pikube.firstboot.step import Outcome, StepError, changed, skipped

ADMIN_GROUPS = ("sudo", "adm", "systemd-journal", "docker")
BEGIN = "# --- pikube: keys from pikube.yaml (first boot rewrites this block) ---"
END = "# --- pikube: end ---"
SSHD_DROPIN = "/etc/ssh/sshd_config.d/pikube.conf"
SSHD_CONF = """\
# Written by pikube first boot: pikube.yaml gave SSH keys, so logins use keys only.
PasswordAuthentication no
KbdInteractiveAuthentication no
"""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


def accounts(host: Host) -> dict[str, Account]:
    found = {}
    for line in read_text(host.path("/etc/passwd")).splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit() and parts[3].isdigit():
            found[parts[0]] = Account(parts[0], int(parts[2]), int(parts[3]), parts[5])
    return found


def groups(host: Host) -> dict[str, set[str]]:
    """Each group of the board and its supplementary members."""
    found: dict[str, set[str]] = {}
    for line in read_text(host.path("/etc/group")).splitlines():
        parts = line.split(":")
        if len(parts) >= 4:
            found[parts[0]] = {m for m in parts[3].split(",") if m}
    return found


def _root_flag(host: Host) -> list[str]:
    return [] if host.root == Path("/") else ["--root", str(host.root)]


def with_keys(text: str, keys: tuple[str, ...]) -> str:
    """`text` (an authorized_keys file) with pikube's block holding `keys` (no block when there are none)."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if line == BEGIN:
            inside = True
        elif line == END:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = [BEGIN, *keys, END] if keys else []
    lines = kept + ([""] if kept and block else []) + block
    return "\n".join(lines) + "\n" if lines else ""


def _owner(acct: Account) -> tuple[int | None, int | None]:
    """Chown to the account when we may (as root on a board; to ourselves in tests)."""
    if os.geteuid() == 0 or acct.uid == os.geteuid():
        return acct.uid, acct.gid
    return None, None


def _install_keys(host: Host, acct: Account, keys: tuple[str, ...]) -> bool:
    ssh_dir = host.path(acct.home) / ".ssh"
    path = ssh_dir / "authorized_keys"
    old = read_text(path)
    new = with_keys(old, keys)
    if new == old and (not keys or path.exists()):
        return False
    if not new:
        return remove(path)
    uid, gid = _owner(acct)
    did = False
    if not ssh_dir.is_dir():
        ssh_dir.mkdir(parents=True, mode=0o700)
        did = True
    os.chmod(ssh_dir, 0o700)
    if uid is not None:
        os.chown(ssh_dir, uid, -1 if gid is None else gid)
    return write_file(path, new, 0o600, uid=uid, gid=gid) or did


def _ensure_user(host: Host, name: str) -> tuple[Account, bool]:
    wanted = [g for g in ADMIN_GROUPS if g in groups(host)]
    existing = accounts(host).get(name)
    if existing is None:
        argv = ["useradd", *_root_flag(host), "--create-home", "--shell", "/bin/bash", "--user-group",
                "--comment", "pikube user"]
        if wanted:
            argv += ["--groups", ",".join(wanted)]
        host.run([*argv, name])
        made = accounts(host).get(name)
        if made is None:
            raise StepError(f"useradd did not create {name!r}")
        return made, True
    missing = [g for g in wanted if name not in groups(host)[g]]
    if missing:
        host.run(["usermod", *_root_flag(host), "--append", "--groups", ",".join(missing), name])
    return existing, bool(missing)


def user(host: Host, cfg: BoardConfig) -> Outcome:
    keys = cfg.ssh_authorized_keys
    if cfg.user is None and not keys:
        return skipped("no user and no SSH keys given")
    known = accounts(host)
    if cfg.user is None:
        root = known.get("root")
        if root is None:
            raise StepError("there is no root account in /etc/passwd")
        did = _install_keys(host, root, keys)
        return changed(did, f"{len(keys)} SSH key(s) for root", f"root already has the {len(keys)} SSH key(s)")
    acct, did = _ensure_user(host, cfg.user)
    did |= _install_keys(host, acct, keys)
    if "root" in known and cfg.user != "root":
        did |= _install_keys(host, known["root"], ())  # keys moved from root to the user
    if host.path("/etc/sudoers.d").is_dir():
        did |= write_file(host.path(f"/etc/sudoers.d/pikube-{cfg.user}"),
                          f"# pikube first boot: {cfg.user} logs in with a key and has no password.\n"
                          f"{cfg.user} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    what = f"user {cfg.user} with {len(keys)} SSH key(s) and sudo"
    return changed(did, what, f"{what}, already so")


def sshd(host: Host, cfg: BoardConfig) -> Outcome:
    path = host.path(SSHD_DROPIN)
    if not cfg.ssh_authorized_keys:
        if remove(path):
            return changed(True, f"no SSH keys given: removed {SSHD_DROPIN}", "")
        return skipped("no SSH keys given; sshd keeps its settings")
    did = write_file(path, SSHD_CONF)
    if did and host.live:
        # --no-block: at boot sshd's start waits for this unit, so nothing may wait for sshd here
        host.run(["systemctl", "--no-block", "try-reload-or-restart", "ssh.service"], check=False)
    return changed(did, f"password login off ({SSHD_DROPIN})", "password login already off")
