"""A container's CPU time and working-set memory, read from its cgroup, on cgroup v1 and v2 alike.

The kubelet (through cAdvisor) reads the same files: cumulative CPU time
(`cpuacct.usage` in nanoseconds on v1, `usage_usec` of `cpu.stat` on v2) and
the working set, which is the memory the kernel charges the container minus its
inactive file cache (`memory.usage_in_bytes` - `total_inactive_file` on v1,
`memory.current` - `inactive_file` on v2): what an OOM kill would look at.

Where a container's cgroup is comes from `/proc/<pid>/cgroup` of its first
process, so the cgroup driver (cgroupfs or systemd) and the layout (v1, hybrid,
unified v2) need not be guessed; the directory is found once per container and
then only its files are read (a few small reads per sample, no Docker call).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupDirs:
    """The directories holding a container's CPU and memory accounting (the same one on v2)."""

    cpu: Path
    memory: Path
    v2: bool


@dataclass(frozen=True)
class Usage:
    cpu_ns: int  # cumulative CPU time
    working_set: int  # bytes


def dirs_of(pid: int, proc: Path = Path("/proc"), root: Path = ROOT) -> CgroupDirs | None:
    """The cgroup directories of process `pid`, or None if it is gone or its cgroups are not mounted here."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    v1: dict[str, str] = {}
    unified = ""
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "" and parts[0] == "0":
            unified = path
        for name in controllers.split(","):
            v1[name] = path
    if "memory" in v1 and ("cpuacct" in v1 or "cpu" in v1):
        cpu_dir = _v1_dir(root, ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"), v1.get("cpuacct") or v1["cpu"])
        mem_dir = _v1_dir(root, ("memory",), v1["memory"])
        if cpu_dir is not None and mem_dir is not None:
            return CgroupDirs(cpu_dir, mem_dir, v2=False)
    if unified:
        base = root / "unified" if (root / "unified" / "cgroup.controllers").exists() and not \
            (root / "cgroup.controllers").exists() else root
        d = base / unified.lstrip("/")
        if (d / "cpu.stat").exists():
            return CgroupDirs(d, d, v2=True)
    return None


def _v1_dir(root: Path, mounts: tuple[str, ...], path: str) -> Path | None:
    for mount in mounts:
        d = root / mount / path.lstrip("/")
        if d.is_dir():
            return d
    return None


def _stat(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def read(d: CgroupDirs) -> Usage | None:
    """The cgroup's usage now, or None if it is gone (the container stopped between listing and reading)."""
    try:
        if d.v2:
            cpu_ns = _stat(d.cpu / "cpu.stat")["usage_usec"] * 1000
            usage = int((d.memory / "memory.current").read_text())
            inactive = _stat(d.memory / "memory.stat").get("inactive_file", 0)
        else:
            cpu_ns = int((d.cpu / "cpuacct.usage").read_text())
            usage = int((d.memory / "memory.usage_in_bytes").read_text())
            inactive = _stat(d.memory / "memory.stat").get("total_inactive_file", 0)
    except (OSError, KeyError, ValueError):
        return None
    return Usage(cpu_ns, max(0, usage - inactive))
