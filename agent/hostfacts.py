"""What the agent knows about its board: CPUs, memory, disk, kernel, and the Raspberry Pi's own facts.

Everything is read through `core.host.Host` (read a file, run a command,
measure a filesystem) so tests can fake a Pi with a dict: board model from
`/proc/device-tree/model`, SoC temperature from the thermal zone, and the
firmware's throttling flags from `vcgencmd get_throttled` where it exists.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from core.host import Host, RealHost

# `vcgencmd get_throttled` bits that mean "happening now" (16-19 mean "has happened since boot").
_THROTTLE_NOW = {0: "under-voltage", 1: "ARM frequency capped", 2: "throttled", 3: "soft temperature limit"}
_ARCH = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "amd64", "armv7l": "arm", "armv6l": "arm",
         "i686": "386", "riscv64": "riscv64"}


@dataclass(frozen=True)
class Facts:
    cpus: int
    memory_bytes: int
    memory_available_bytes: int
    disk_bytes: int
    disk_free_bytes: int
    pid_max: int
    pids: int
    arch: str
    kernel: str
    os_image: str
    machine_id: str
    boot_id: str
    board_model: str = ""
    soc_temperature_c: float | None = None
    throttled: int | None = None

    @property
    def throttled_now(self) -> list[str]:
        flags = self.throttled or 0
        return [what for bit, what in _THROTTLE_NOW.items() if flags & (1 << bit)]


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


def _stdout(result: tuple[int, str] | None) -> str | None:
    return result[1] if result is not None and result[0] == 0 else None


def _throttled(output: str | None) -> int | None:
    # "throttled=0x50005"
    if not output or "=" not in output:
        return None
    try:
        return int(output.strip().split("=", 1)[1], 16)
    except ValueError:
        return None


def _temperature(text: str | None) -> float | None:
    try:
        return round(int((text or "").strip()) / 1000.0, 1)
    except ValueError:
        return None


def collect(host: Host, data_dir: Path) -> Facts:
    """A snapshot of the board, cheap enough to take every few seconds."""
    meminfo = host.read_text("/proc/meminfo") or ""
    disk_total, disk_free = host.disk(str(data_dir))
    try:
        pid_max = int((host.read_text("/proc/sys/kernel/pid_max") or "32768").strip())
    except ValueError:
        pid_max = 32768
    loadavg = (host.read_text("/proc/loadavg") or "0 0 0 0/0").split()
    try:
        pids = int(loadavg[3].split("/")[1])
    except (IndexError, ValueError):
        pids = 0
    model = (host.read_text("/proc/device-tree/model") or "").replace("\x00", "").strip()
    machine = host.machine()
    return Facts(
        cpus=host.cpu_count(),
        memory_bytes=_meminfo(meminfo, "MemTotal"),
        memory_available_bytes=_meminfo(meminfo, "MemAvailable"),
        disk_bytes=disk_total,
        disk_free_bytes=disk_free,
        pid_max=pid_max,
        pids=pids,
        arch=_ARCH.get(machine, machine),
        kernel=(host.read_text("/proc/sys/kernel/osrelease") or platform.release()).strip(),
        os_image=_os_image(host.read_text("/etc/os-release") or ""),
        machine_id=(host.read_text("/etc/machine-id") or "").strip(),
        boot_id=(host.read_text("/proc/sys/kernel/random/boot_id") or "").strip(),
        board_model=model,
        soc_temperature_c=_temperature(host.read_text("/sys/class/thermal/thermal_zone0/temp")),
        throttled=_throttled(_stdout(host.run(["vcgencmd", "get_throttled"], timeout=5))),
    )


__all__ = ["Facts", "Host", "RealHost", "collect"]
