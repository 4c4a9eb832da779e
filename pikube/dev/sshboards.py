"""SSH boards: network namespaces that a laptop's Ansible or `pikube provision` can log in to.

Each board is a `pikube.dev.boards` namespace on a test LAN, running the machine's own
sshd with its own host key, listening only on the board's address and accepting one
key. That sshd, and so everything a login starts (Ansible's modules, enable-master,
the services it supervises), lives in a private mount and UTS namespace where `/etc`,
`/var`, `/opt`, `/home`, `/root`, `/boot` and `/usr/local` are overlays whose upper
layers are the board's own directory. So a board writes only there, has its own
hostname, its own user `pi` (in its own `/etc/passwd`, with the sudo rights the test
chose), and, when asked, a Raspberry Pi device tree model and a `cmdline.txt`, as a Pi
has. Nothing on the machine's filesystem changes; tearing the LAN down ends the
boards' processes (their mounts go with them) and the directories are deleted.

The boards run the machine's x86_64 Python, so they install the bundle's x86_64
wheels; the aarch64 path is the image booted under QEMU (`pikube.dev.qemu`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from core import processes
from pikube.dev import boards, naming
from pikube.dev.boards import Board, Lan
from pikube.dev.errors import DevError

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")
OVERLAID = ("etc", "var", "opt", "home", "root", "boot", "usr/local")
USER = "pi"
PI_MODEL = "Raspberry Pi 4 Model B Rev 1.4"
# Raspberry Pi OS's cmdline.txt as the imager writes it: one line, no memory cgroup flag.
PI_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=12345678-02 rootfstype=ext4 fsck.repair=yes rootwait\n"
START_TIMEOUT = 10.0
SUDO_PASSWORD = "raspberry"
LOGIN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


class Sudo(Enum):
    """What `pi` may do with sudo on a board."""

    NOPASSWD = "nopasswd"  # `pi ALL=(ALL) NOPASSWD: ALL`, as Raspberry Pi OS sets its first user up
    PASSWORD = "password"  # `pi ALL=(ALL) ALL` and pi's password is SUDO_PASSWORD (Debian's default for sudoers)
    NONE = "none"  # not in sudoers: `sudo -n` says a password is required


@dataclass(frozen=True)
class BoardSpec:
    name: str
    sudo: Sudo = Sudo.NOPASSWD
    pi: bool = False  # a Raspberry Pi device tree model and /boot/firmware/cmdline.txt


@dataclass
class SshBoard:
    """One running board: its namespace, directory, sshd and host key."""

    board: Board
    spec: BoardSpec
    dir: Path
    host_key: str  # "ssh-ed25519 AAAA..."
    sshd: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def address(self) -> str:
        return str(self.board.address)

    @property
    def upper(self) -> Path:
        """The board's own layer: what it wrote to /etc, /var, /opt... lands here."""
        return self.dir / "upper"

    @property
    def data_dir(self) -> Path:
        """Where the board's pikube keeps its data (`pikube_data_dir`), outside its private /var.

        The boards' pods run in the machine's one Docker engine, which bind-mounts the pods' resolv.conf
        and hosts from the agent's data directory: on a real board the agent and its Docker see one file
        system, here only a path outside the board's overlay is seen by both (Docker would otherwise make
        empty directories of the missing files on the machine itself).
        """
        return self.dir / "data"

    def path(self, absolute: str) -> Path:
        """Where the board's `absolute` path (under an overlaid directory) is, seen from the machine."""
        rel = absolute.lstrip("/")
        if not any(rel == d or rel.startswith(d + "/") for d in OVERLAID):
            raise ValueError(f"{absolute} is not on one of the board's own layers")
        return self.upper / rel


@dataclass
class SshLab:
    """Boards on one test LAN, the key that logs in to them and a known_hosts that knows them."""

    lan: Lan
    dir: Path
    boards: dict[str, SshBoard] = field(default_factory=dict)

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def __getitem__(self, name: str) -> SshBoard:
        return self.boards[name]

    def board_command(self, name: str, argv: Sequence[str]) -> list[str]:
        """`argv` as root inside a board: its network, mount and UTS namespaces (what a login sees)."""
        sshd = self.boards[name].sshd
        if sshd is None:
            raise DevError(f"board {name} runs no sshd")
        return ["nsenter", "-t", str(sshd.pid), "-n", "-m", "-u", "--", *argv]

    def run(self, name: str, argv: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """`argv` as root in the board, with a login's environment (none of this process's, e.g. PYTHONPATH)."""
        return subprocess.run(self.board_command(name, argv), capture_output=True, text=True, timeout=timeout,
                              check=False, env=LOGIN_ENV)

    def unused_address(self) -> str:
        """An address on the LAN where no board is: connecting to it finds no host."""
        return str(self.lan.subnet[200])


def keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   capture_output=True)
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def _free_id(taken: str) -> int:
    used = {int(f) for line in taken.splitlines() for f in line.split(":")[2:4] if f.isdigit()}
    return next(i for i in range(4242, 60000) if i not in used)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _prepare(b: SshBoard, authorized: str) -> None:
    """The board's upper layers before its sshd starts: users, sudo rights, sshd config, a Pi's files."""
    upper = b.upper
    for d in OVERLAID:
        (upper / d).mkdir(parents=True, exist_ok=True)
        (b.dir / "work" / d).mkdir(parents=True, exist_ok=True)
    etc = upper / "etc"
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    uid = _free_id(passwd + group)
    _write(etc / "passwd", passwd + f"{USER}:x:{uid}:{uid}:pi:/home/{USER}:/bin/bash\n")
    _write(etc / "group", group + f"{USER}:x:{uid}:\n")
    hashed = "*"
    if b.spec.sudo is Sudo.PASSWORD:
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=SUDO_PASSWORD, capture_output=True,
                                text=True, check=True).stdout.strip()
    _write(etc / "shadow", Path("/etc/shadow").read_text() + f"{USER}:{hashed}:20000:0:99999:7:::\n", 0o640)
    with contextlib.suppress(KeyError, PermissionError):
        import grp

        os.chown(etc / "shadow", 0, grp.getgrnam("shadow").gr_gid)
    if b.spec.sudo is Sudo.NOPASSWD:
        _write(etc / "sudoers.d" / "010_pi-nopasswd", f"{USER} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    elif b.spec.sudo is Sudo.PASSWORD:
        _write(etc / "sudoers.d" / "010_pi", f"{USER} ALL=(ALL) ALL\n", 0o440)
    _write(etc / "hostname", b.name + "\n")
    _write(etc / "hosts", Path("/etc/hosts").read_text() + f"127.0.1.1\t{b.name}\n")
    home = upper / "home" / USER
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, uid, uid)
    # sshd reads a user's authorized keys as that user: keep them where `pi` can read them.
    _write(etc / "ssh" / "pikube-authorized" / "keys", authorized + "\n")
    _write(b.dir / "sshd_config", "\n".join([
        f"ListenAddress {b.address}",
        f"HostKey {b.dir / 'ssh_host_ed25519_key'}",
        "AuthorizedKeysFile /etc/ssh/pikube-authorized/keys",
        f"PidFile {b.dir / 'sshd.pid'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "MaxStartups 64",
        "MaxSessions 64",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "",
    ]))
    if b.spec.pi:
        _write(upper / "boot" / "firmware" / "cmdline.txt", PI_CMDLINE)


def _start_script(b: SshBoard) -> str:
    mounts = "\n".join(
        f"mount -t overlay overlay -o lowerdir=/{d},upperdir={b.upper / d},workdir={b.dir / 'work' / d} /{d}"
        for d in OVERLAID)
    pi = ""
    if b.spec.pi:  # where a Pi's firmware-provided device tree shows (/proc/device-tree links to it)
        pi = ("mount -t tmpfs -o size=64k tmpfs /sys/firmware\n"
              "mkdir -p /sys/firmware/devicetree/base\n"
              f"printf '{PI_MODEL}\\000' > /sys/firmware/devicetree/base/model\n")
    return f"set -e\n{mounts}\nhostname {b.name}\n{pi}exec {SSHD} -D -e -f {b.dir / 'sshd_config'}\n"


def _wait_listening(lab: SshLab, b: SshBoard) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    log = b.dir / "sshd.log"
    while time.monotonic() < deadline:
        assert b.sshd is not None
        if b.sshd.poll() is not None:
            raise DevError(f"sshd on board {b.name} exited: {log.read_text(errors='replace')[-500:]}")
        out = boards.run_in_board(b.board, ["ss", "-Htln", f"src {b.address}:22"], timeout=5).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise DevError(f"sshd on board {b.name} did not listen within {START_TIMEOUT:.0f} s")


def start(workdir: Path, specs: Sequence[BoardSpec], run: naming.RunId | None = None) -> SshLab:
    """Boards for `specs` on a fresh LAN, each sshd listening; on failure everything made is removed."""
    if shutil.which("nsenter") is None or not Path(SSHD).exists():
        raise DevError("SSH boards need openssh-server (sshd) and util-linux (nsenter, unshare).")
    run = run or naming.new_run_id()
    lan = boards.create([s.name for s in specs], run=run)
    lab = SshLab(lan=lan, dir=workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        authorized = keygen(lab.key, "pikube-test-laptop")
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        known = []
        for spec in specs:
            bdir = workdir / spec.name
            bdir.mkdir(parents=True, exist_ok=True)
            host_key = keygen(bdir / "ssh_host_ed25519_key", f"host-{spec.name}")
            b = SshBoard(board=lan.board(spec.name), spec=spec, dir=bdir, host_key=host_key)
            _prepare(b, authorized)
            lab.boards[spec.name] = b
            known.append(f"{b.address} {host_key}\n")
            with open(bdir / "sshd.log", "ab") as log:
                b.sshd = subprocess.Popen(
                    boards.board_command(b.board, ["unshare", "--mount", "--uts", "--propagation", "private",
                                                   "sh", "-c", _start_script(b)]),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        lab.known_hosts.write_text("".join(known))
        for b in lab.boards.values():
            _wait_listening(lab, b)
    except BaseException:
        stop(lab)
        raise
    return lab


def client_processes(lab: SshLab) -> list[int]:
    """ssh clients (ControlPersist masters among them) that use this lab's key or directory."""
    me = os.getpid()
    return [pid for pid in processes.pids_mentioning(f"{lab.dir}/")
            if pid != me and processes.cmdline(pid)[:1] != [SSHD]]


def stop(lab: SshLab) -> list[str]:
    """End the boards' processes, remove the LAN and the boards' files; what was left behind (normally [])."""
    processes.terminate(client_processes(lab), 5.0)
    boards.teardown(lab.lan.run)
    for b in lab.boards.values():
        if b.sshd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                b.sshd.wait(5)
    left = boards.leftovers(lab.lan.run) + [f"process {pid}" for pid in client_processes(lab)]
    shutil.rmtree(lab.dir, ignore_errors=True)
    return left


@contextlib.contextmanager
def lab_up(workdir: Path, specs: Sequence[BoardSpec], run: naming.RunId | None = None) -> Iterator[SshLab]:
    lab = start(workdir, specs, run)
    try:
        yield lab
    finally:
        left = stop(lab)
        if left:
            raise DevError(f"the SSH boards left behind: {left}")
