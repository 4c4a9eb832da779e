"""A pikube SD-card image booted under qemu-system-aarch64 (`-M virt`), for tests and bench/board.py.

QEMU's `virt` machine runs the image's own kernel, initramfs and root file system
(the Raspberry Pi's GPU firmware stage is not emulated, so config.txt is checked
statically by the assembler instead). The kernel and initramfs are read out of the
image's FAT with mtools, the kernel command line is the image's cmdline.txt with
the console moved to the virt machine's UART. The guest's only network is QEMU's
user-mode stack with `restrict=on`: it reaches nothing on the host or beyond,
except what is forwarded: chosen guest ports appear on free loopback ports of the
host (hostfwd), and an optional guestfwd lets the guest reach one host service
(a master running on the host, for a worker board) through pikube.dev.guestrelay.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20
BOOT_OFFSET = 4 * MIB
GUEST_GATEWAY_SERVICE = "10.0.2.100"  # what a guest dials to reach the host service given as `host_service`


class VmError(Exception):
    """The VM would not start or answer; the message carries the tail of its console."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mtools(*args: str) -> str:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def boot_files(image: Path, dest: Path) -> tuple[Path, Path, str]:
    """The kernel and initramfs config.txt names, copied out of the image's FAT, and cmdline.txt's line."""
    fat = f"{image}@@{BOOT_OFFSET}"
    config = _mtools("mtype", "-i", fat, "::/config.txt")
    kernel = re.search(r"^\s*kernel=(\S+)", config, re.M)
    initrd = re.search(r"^\s*initramfs\s+(\S+)", config, re.M)
    if not kernel or not initrd:
        raise VmError(f"{image}: config.txt names no kernel or initramfs")
    dest.mkdir(parents=True, exist_ok=True)
    out = (dest / "vmlinuz", dest / "initrd.img")
    for name, path in zip((kernel.group(1), initrd.group(1)), out, strict=True):
        _mtools("mcopy", "-o", "-n", "-i", fat, f"::/{name}", str(path))
    cmdline = _mtools("mtype", "-i", fat, "::/cmdline.txt").strip()
    return out[0], out[1], cmdline


def virt_cmdline(pi_cmdline: str) -> str:
    """cmdline.txt with its consoles replaced by the virt machine's PL011 UART."""
    kept = [a for a in pi_cmdline.split() if not a.startswith("console=")]
    return " ".join(["console=ttyAMA0", *kept])


@dataclass
class Vm:
    image: Path
    workdir: Path
    memory_mib: int = 1024
    cpus: int = 2
    guest_ports: tuple[int, ...] = (22,)
    host_service: tuple[str, int] | None = None  # reachable in the guest as GUEST_GATEWAY_SERVICE:port
    ports: dict[int, int] = field(default_factory=dict)  # guest port -> host loopback port
    started: float = 0.0
    pid: int | None = None

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    def command(self, kernel: Path, initrd: Path, append: str) -> list[str]:
        net = "user,id=n0,restrict=on," + ",".join(
            f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in self.ports.items())
        if self.host_service:
            # One relay process per guest connection (a `tcp:` chardev would connect once, at QEMU's start).
            host, port = self.host_service
            net += (f",guestfwd=tcp:{GUEST_GATEWAY_SERVICE}:{port}-cmd:"
                    f"{sys.executable} -m pikube.dev.guestrelay {host} {port}")
        return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", str(self.cpus),
                "-m", str(self.memory_mib), "-display", "none", "-monitor", "none",
                "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
                "-drive", f"if=none,file={self.image},format=raw,id=hd0", "-device", "virtio-blk-device,drive=hd0",
                "-netdev", net, "-device", "virtio-net-device,netdev=n0",
                "-device", "virtio-rng-device",
                "-serial", f"file:{self.console}", "-pidfile", str(self.workdir / "qemu.pid"), "-daemonize"]

    def start(self) -> Vm:
        if shutil.which("qemu-system-aarch64") is None:
            raise VmError("qemu-system-aarch64 is missing: apt-get install qemu-system-arm")
        self.workdir.mkdir(parents=True, exist_ok=True)
        kernel, initrd, cmdline = boot_files(self.image, self.workdir / "boot")
        self.ports = {guest: free_port() for guest in self.guest_ports}
        self.started = time.monotonic()
        proc = subprocess.run(self.command(kernel, initrd, virt_cmdline(cmdline)), capture_output=True, text=True)
        if proc.returncode != 0:
            raise VmError(f"qemu did not start: {proc.stderr.strip()}")
        self.pid = int((self.workdir / "qemu.pid").read_text())
        return self

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def console_text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def wait_console(self, pattern: str, timeout: float) -> float:
        """Seconds from start until `pattern` (a regex) shows on the serial console."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        size = 0
        while time.monotonic() < deadline:
            text = self.console_text()
            if rx.search(text):
                return time.monotonic() - self.started
            if not self.alive():
                raise VmError(f"the VM stopped; its console ends:\n{text[-3000:]}")
            size = len(text)
            time.sleep(0.25 if size else 0.5)
        raise VmError(f"no {pattern!r} on the console after {timeout:.0f} s; it ends:\n{self.console_text()[-3000:]}")

    def stop(self) -> None:
        """Kill QEMU (the disk is a scratch copy: nothing to flush)."""
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None


@dataclass
class Ssh:
    """OpenSSH into a VM through its forwarded port, with a private known_hosts and no agent or config."""
    port: int
    key: Path
    known_hosts: Path
    user: str = "root"

    def argv(self, command: str, timeout: float = 10) -> list[str]:
        return ["ssh", "-F", "none", "-p", str(self.port), "-i", str(self.key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=accept-new",
                "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}", "-o", "ControlMaster=no",
                f"{self.user}@127.0.0.1", command]

    def run(self, command: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(command), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise VmError(f"ssh {command!r} exited {proc.returncode}: {proc.stderr.strip()[-1000:]}")
        return proc

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                proc = self.run("true", timeout=20, check=False)
            except subprocess.TimeoutExpired:
                continue
            if proc.returncode == 0:
                return
            last = proc.stderr.strip()
            time.sleep(1)
        raise VmError(f"no SSH login after {timeout:.0f} s: {last}")


def keypair(dest: Path) -> tuple[Path, str]:
    """A fresh ed25519 key for the test's user: (private key path, public key line)."""
    key = dest / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pikube-test", "-f", str(key)],
                       check=True)
    return key, (dest / "id_ed25519.pub").read_text().strip()


def grow(image: Path, size_bytes: int) -> None:
    """Make the image file `size_bytes` long (sparse): a bigger card, for first boot to grow the root onto."""
    with image.open("r+b") as f:
        f.truncate(size_bytes)


def card(built: Path, dest: Path, pikube_yaml: str, size_bytes: int = 4 << 30) -> Path:
    """A sparse copy of the image grown to a `size_bytes` card, `pikube_yaml` on its FAT (what pikube flash leaves)."""
    dest.mkdir(parents=True, exist_ok=True)
    img = dest / "card.img"
    subprocess.run(["cp", "--sparse=always", str(built), str(img)], check=True)
    grow(img, size_bytes)
    (dest / "pikube.yaml").write_text(pikube_yaml)
    subprocess.run(["mcopy", "-o", "-i", f"{img}@@{BOOT_OFFSET}", str(dest / "pikube.yaml"), "::/pikube.yaml"],
                   check=True, env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    return img
