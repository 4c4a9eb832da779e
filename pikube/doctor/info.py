"""`pikube info`: the board at a glance, as kubernetes-on-arm's `kube-config info` showed it.

Board model, architecture, kernel, CPUs, memory and disk use, the SoC's
temperature, the versions that matter (pikube, Docker, Python). The facts are
the agent's own (`agent.hostfacts`, the same reading that fills the Node), put
here by the CLI; this module only says how they are shown. The role and the
cluster's state come from the bootstrap (`pikube.bootstrap.status`).
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024**2
GiB = 1024**3


@dataclass(frozen=True)
class BoardInfo:
    model: str
    arch: str
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
    # What the firmware reports as happening now (under-voltage, throttling...), None without vcgencmd.
    throttled: list[str] | None
    pikube_version: str
    docker: str
    python_version: str


def _size(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n // MiB} MiB"


def render(info: BoardInfo) -> list[tuple[str, str]]:
    """(label, value) rows, in the order `pikube info` prints them."""
    used = info.memory_total - info.memory_available
    temp = "unknown (no thermal zone)" if info.temperature_c is None else f"{info.temperature_c:.1f} °C"
    if info.throttled:
        temp += f" — now: {', '.join(info.throttled)}"
    return [
        ("board", info.model or "not a Raspberry Pi (no /proc/device-tree/model)"),
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
