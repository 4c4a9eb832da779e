"""A Raspberry Pi behind `core.host.Host` (and the doctor's Docker question): files, commands, disk, clock in dicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

GiB = 1024**3
NOW = 1_780_000_000.0  # 2026-05-28

PI4_FILES = {
    "/proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.4\x00",
    "/proc/meminfo": "MemTotal:        3884360 kB\nMemFree:          123456 kB\nMemAvailable:    2942180 kB\n",
    "/proc/sys/kernel/osrelease": "6.6.31+rpt-rpi-v8\n",
    "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    "/sys/class/thermal/thermal_zone0/temp": "48312\n",
    "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
    "/proc/sys/net/ipv4/ip_forward": "1\n",
    "/proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
    "/sys/module/vxlan": "",
    "/proc/swaps": "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
    "/boot/firmware/cmdline.txt": "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 "
                                  "fsck.repair=yes rootwait cgroup_enable=memory cgroup_memory=1\n",
    "/etc/resolv.conf": "nameserver 192.168.1.1\n",
}
PI4_COMMANDS = {
    "iptables --version": (0, "iptables v1.8.9 (nf_tables)"),
    "nft --version": (0, "nftables v1.0.6 (Lester Gooch #5)"),
    "vcgencmd get_throttled": (0, "throttled=0x0"),
    "systemctl --version": (0, "systemd 252"),
    "ip -4 -o addr show dev lo": (0, "1: lo    inet 127.0.0.1/8 scope host lo\n"
                                     "1: lo    inet 10.96.0.10/32 scope global lo:pkdns\n"),
}


@dataclass
class FakePi:
    files: dict[str, str] = field(default_factory=lambda: dict(PI4_FILES))
    commands: dict[str, tuple[int, str]] = field(default_factory=lambda: dict(PI4_COMMANDS))
    docker: tuple[bool, str] = (True, "20.10.24+dfsg1")
    disk_bytes: tuple[int, int] = (29 * GiB, 20 * GiB)
    clock: float = NOW
    machine_name: str = "aarch64"
    cpus: int = 4
    ran: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)
    # DNS answers by (server, name): (rcode, addresses); a server not here does not answer.
    dns: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=lambda: {
        ("192.168.1.1", "."): ("NOERROR", []),
        ("10.96.0.10", "kubernetes.default.svc.cluster.local"): ("NOERROR", ["10.96.0.1"])})

    def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    def exists(self, path: str) -> bool:
        return path in self.files

    def run(self, argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str] | None:
        line = " ".join(argv)
        self.ran.append(line)
        return self.commands.get(line)

    def disk(self, path: str) -> tuple[int, int]:
        return self.disk_bytes

    def machine(self) -> str:
        return self.machine_name

    def cpu_count(self) -> int:
        return self.cpus

    def docker_version(self, docker_host: str) -> tuple[bool, str]:
        return self.docker

    def now(self) -> float:
        return self.clock

    def dns_query(self, server: str, name: str, qtype: str) -> tuple[str, list[str]] | None:
        return self.dns.get((server, name))

    def write_text(self, path: str, text: str) -> None:
        self.written[path] = text
        self.files[path] = text
