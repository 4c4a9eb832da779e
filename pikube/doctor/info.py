"""`pikube info`: the board at a glance, as kubernetes-on-arm's `kube-config info` showed it.

Board model, architecture, kernel, CPUs, memory and disk use, the SoC's
temperature, the versions that matter (pikube, Docker, Python), and, from
the bootstrap's record, the board's role; the cluster's state is added by the
CLI, which knows the credentials.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from pikube import __version__
from pikube.doctor.host import Host

MiB = 1024**2
GiB = 1024**3
ARCH = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "amd64", "armv7l": "arm", "armv6l": "arm",
        "i686": "386", "riscv64": "riscv64"}
# `vcgencmd get_throttled` bits meaning "now" (16-19 mean "since boot").
THROTTLED_NOW = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}


@dataclass(frozen=True)
class BoardInfo:
    model: str
    machine: str
    kernel: str
    os_image: str
    cpus: int
    memory_total: int
    memory_available: int
    disk_path: str
    disk_total: int
    disk_free: int
    temperature_c: float | None
    throttled: list[str] | None
    pikube_version: str
    docker: str
    python_version: str

    @property
    def arch(self) -> str:
        return ARCH.get(self.machine, self.machine)


def _meminfo(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _os_image(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def _temperature(text: str | None) -> float | None:
    try:
        return round(int((text or "").strip()) / 1000.0, 1)
    except ValueError:
        return None


def _throttled(host: Host) -> list[str] | None:
    result = host.run(["vcgencmd", "get_throttled"])
    if result is None or result[0] != 0 or "=" not in result[1]:
        return None
    try:
        flags = int(result[1].strip().split("=", 1)[1], 16)
    except ValueError:
        return None
    return [what for bit, what in THROTTLED_NOW.items() if flags & (1 << bit)]


def collect(host: Host, data_dir: str, docker_host: str) -> BoardInfo:
    meminfo = host.read_text("/proc/meminfo") or ""
    total, free = host.disk(data_dir)
    ok, docker = host.docker_version(docker_host)
    model = (host.read_text("/proc/device-tree/model") or "").replace("\x00", "").strip()
    return BoardInfo(
        model=model or "not a Raspberry Pi (no /proc/device-tree/model)",
        machine=host.machine(),
        kernel=(host.read_text("/proc/sys/kernel/osrelease") or platform.release()).strip(),
        os_image=_os_image(host.read_text("/etc/os-release") or ""),
        cpus=host.cpu_count(),
        memory_total=_meminfo(meminfo, "MemTotal"),
        memory_available=_meminfo(meminfo, "MemAvailable"),
        disk_path=data_dir,
        disk_total=total,
        disk_free=free,
        temperature_c=_temperature(host.read_text("/sys/class/thermal/thermal_zone0/temp")),
        throttled=_throttled(host),
        pikube_version=__version__,
        docker=docker if ok else f"not answering at {docker_host} ({docker})",
        python_version=platform.python_version(),
    )


def _size(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n // MiB} MiB"


def render(info: BoardInfo) -> list[tuple[str, str]]:
    """(label, value) rows, in the order `pikube info` prints them."""
    used = info.memory_total - info.memory_available
    temp = "unknown (no thermal zone)" if info.temperature_c is None else f"{info.temperature_c:.1f} °C"
    if info.throttled:
        temp += f" — now: {', '.join(info.throttled)}"
    return [
        ("board", info.model),
        ("arch", f"{info.arch} ({info.machine})"),
        ("os", info.os_image),
        ("kernel", info.kernel),
        ("cpus", str(info.cpus)),
        ("memory", f"{_size(used)} used of {_size(info.memory_total)}"),
        ("disk", f"{_size(info.disk_total - info.disk_free)} used, {_size(info.disk_free)} free "
                 f"(filesystem of {info.disk_path})"),
        ("temperature", temp),
        ("pikube", info.pikube_version),
        ("docker", info.docker),
        ("python", info.python_version),
    ]
