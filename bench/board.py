"""The image on a 1 GB board (QEMU virt, TCG): boot times, memory, idle SD writes, image size, build time.

Builds the image (warm: from the cached rootfs; the cold figure adds the rootfs
build time recorded beside the cached tarball), boots a copy preseeded as a master
under `qemu-system-aarch64 -M virt -m 1024`, and prints, in one run:

- power-on → login prompt, power-on → SSH, power-on → node Ready (target ≤ 60 s on
  real hardware; under TCG emulation the same boot is several times slower, so the
  figure is printed beside the guest's own `systemd-analyze` kernel+userspace time);
- memory used (`free`) after boot, split into Docker (docker + containerd), the
  master and the agent (their units' cgroups), and the rest (the OS); the same with
  10 pods running (target: OS + pikube ≤ 350 MB);
- bytes written to the root disk in `--idle-minutes` idle minutes, from the guest's
  /proc/diskstats (target ≤ 1 MB/h), and who wrote them: the deltas of every
  process's /proc/PID/io write_bytes over the window (charged when a page is
  dirtied, so the writer is named, not the flusher; kernel threads such as
  jbd2's journal commits and ext4lazyinit show up too), grouped by command name,
  beside the ext4 file system's own lifetime_write_kbytes delta;
- image size raw, mapped (bmap), zstd-compressed (target ≤ 350 MB).

    sudo .venv/bin/python -m bench.board [--idle-minutes 30] [--zstd-level 12] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.runtime.localimages import BUSYBOX_IMAGE  # the image the board's agent makes itself
from pikube.dev import qemu
from pikube.image import recipe
from pikube.image.build import Options, build, default_cache
from pikube.image.progress import Progress
from pikube.image.rootfs import cached_tarball

MB = 1e6


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=20s", *args],
                          capture_output=True, text=True, timeout=90)


def wait(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise SystemExit(f"bench.board: {what} not after {timeout:.0f} s")


def memory(ssh: qemu.Ssh) -> dict[str, float]:
    """MB used in all (free's 'used'), and by Docker, the master and the agent (their cgroups)."""
    used = int(ssh.run("free -b | awk '/^Mem:/ {print $3}'").stdout) / MB
    units = {"docker": "docker.service containerd.service", "master": "pikube-master.service",
             "agent": "pikube-agent.service"}
    out: dict[str, float] = {"used": used}
    for name, unit_list in units.items():
        total = 0
        for unit in unit_list.split():
            value = ssh.run(f"systemctl show -P MemoryCurrent {unit}").stdout.strip()
            total += int(value) if value.isdigit() else 0
        out[name] = total / MB
    pods = ssh.run("cat /sys/fs/cgroup/system.slice/docker-*.scope/memory.current 2>/dev/null "
                   "| awk '{s+=$1} END {print s+0}'", check=False).stdout.strip()
    out["pods"] = float(pods or 0) / MB
    out["os"] = used - out["docker"] - out["master"] - out["agent"] - out["pods"]
    return out


# PSS (KB) of every process, "COMM PSS" per line: the runtime's share of memory without its shared pages counted
# once per process (20 containerd shims share one binary's text).
_PSS_SCRIPT = r"""for d in /proc/[0-9]*; do
  p=$(sed -n 's/^Pss: *\([0-9]*\) kB/\1/p' "$d/smaps_rollup" 2>/dev/null)
  [ -n "$p" ] && printf '%s %s\n' "$(tr ' ' _ < "$d/comm" 2>/dev/null)" "$p"
done; true"""


def runtime_pss(ssh: qemu.Ssh) -> dict[str, float]:
    """MB of PSS for dockerd, containerd, all containerd shims together (and how many), the Python services."""
    out = {"dockerd": 0.0, "containerd": 0.0, "shims": 0.0, "shim_count": 0.0, "python": 0.0}
    for line in ssh.run(_PSS_SCRIPT, timeout=120).stdout.splitlines():
        comm, _, kb = line.rpartition(" ")
        if not kb.isdigit():
            continue
        mb = int(kb) * 1024 / MB
        if comm.startswith("containerd-shim"):
            out["shims"] += mb
            out["shim_count"] += 1
        elif comm in ("dockerd", "containerd", "python"):
            out[comm] += mb
    return out


def disk_writes(ssh: qemu.Ssh) -> int:
    """Bytes written to the virtio disk since boot (sectors written times 512, /proc/diskstats field 10)."""
    line = ssh.run("grep ' vda ' /proc/diskstats").stdout.split()
    return int(line[9]) * 512


# Every process's write_bytes (bytes it caused to be sent to storage), one "PID BYTES COMM" line each.
_IO_SCRIPT = r"""for d in /proc/[0-9]*; do
  w=$(sed -n 's/^write_bytes: //p' "$d/io" 2>/dev/null)
  [ -n "$w" ] && printf '%s %s %s\n' "${d#/proc/}" "$w" "$(tr ' ' _ < "$d/comm" 2>/dev/null)"
done; cat /sys/fs/ext4/vda2/lifetime_write_kbytes"""


def process_writes(ssh: qemu.Ssh) -> tuple[dict[tuple[int, str], int], int]:
    """write_bytes per (pid, command), and the root ext4's lifetime_write_kbytes."""
    lines = ssh.run(_IO_SCRIPT, timeout=120).stdout.split("\n")
    per: dict[tuple[int, str], int] = {}
    ext4_kb = 0
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            per[(int(parts[0]), parts[2])] = int(parts[1])
        elif len(parts) == 1 and parts[0].isdigit():
            ext4_kb = int(parts[0])
    return per, ext4_kb


def writers(before: dict[tuple[int, str], int], after: dict[tuple[int, str], int]) -> dict[str, int]:
    """Bytes written during the window per command name (processes started in it count from zero;
    those that exited in it are lost, which is what the 'unattributed' remainder shows), largest first."""
    by_comm: dict[str, int] = {}
    for key, value in after.items():
        delta = value - before.get(key, 0)
        if delta > 0:
            by_comm[key[1]] = by_comm.get(key[1], 0) + delta
    return dict(sorted(by_comm.items(), key=lambda kv: -kv[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--idle-minutes", type=float, default=30.0)
    p.add_argument("--zstd-level", type=int, default=12)
    p.add_argument("--out", type=Path, default=None, help="keep the image here (default: a temporary folder)")
    args = p.parse_args()
    figures: dict[str, float] = {}
    boot_report = ""
    r = recipe.load()
    cache = default_cache()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-board-") as tmp:
            work = Path(tmp)
            out = (args.out or work) / "pikube.img"
            started = time.monotonic()
            result = build(r, Options(board="rpi4", out=out, cache=cache, source=r.root.parent,
                                      zstd_level=args.zstd_level), Progress())
            figures["build_warm_s"] = time.monotonic() - started
            sidecar = cached_tarball(cache, r.rootfs).with_suffix(".json")
            if sidecar.exists():
                figures["rootfs_build_s"] = json.loads(sidecar.read_text())["seconds"]
                figures["build_cold_s"] = figures["build_warm_s"] + figures["rootfs_build_s"]
            figures["image_raw_mb"] = result.assembled.size / MB
            bmap = result.assembled.bmap.read_text()
            mapped = int(re.search(r"<MappedBlocksCount>\s*(\d+)", bmap).group(1))  # type: ignore[union-attr]
            block = int(re.search(r"<BlockSize>\s*(\d+)", bmap).group(1))  # type: ignore[union-attr]
            figures["image_mapped_mb"] = mapped * block / MB
            if result.assembled.zst is not None:
                figures["image_zst_mb"] = result.assembled.zst.stat().st_size / MB

            key, pub = qemu.keypair(work)
            img = qemu.card(out, work / "card", f"version: 1\nhostname: pi-bench\nrole: master\n"
                                                 f"ssh:\n  authorized_keys: [\"{pub}\"]\n")
            vm = qemu.Vm(image=img, workdir=work / "vm", guest_ports=(22, 6443)).start()
            try:
                ssh = qemu.Ssh(port=vm.ports[22], key=key, known_hosts=work / "known_hosts")
                figures["poweron_to_login_s"] = vm.wait_console(r"login:", 900)
                ssh.wait(900)
                figures["poweron_to_ssh_s"] = time.monotonic() - vm.started
                kubeconfig = work / "admin.kubeconfig"
                text = wait("admin kubeconfig", lambda: ssh.run("cat /etc/pikube/admin.kubeconfig",
                                                                check=False).stdout, 900)
                server = next(x.split("server:", 1)[1].strip() for x in text.splitlines() if "server:" in x)
                kubeconfig.write_text(text.replace(server, f"https://127.0.0.1:{vm.ports[6443]}"))
                wait("node Ready", lambda: kubectl(kubeconfig, "get", "node", "pi-bench", "-o",
                     'jsonpath={.status.conditions[?(@.type=="Ready")].status}').stdout == "True", 900)
                figures["poweron_to_ready_s"] = time.monotonic() - vm.started
                analyze = ssh.run("systemd-analyze", check=False).stdout
                boot_report = ssh.run("systemd-analyze blame --no-pager | head -15; systemd-analyze "
                                      "critical-chain --no-pager pikube-agent.service; echo; "
                                      "journalctl -b -o short-monotonic --no-pager -u pikube-firstboot "
                                      "-u pikube-master -u pikube-agent | head -80", check=False).stdout
                if m := re.search(r"= ([\d.]+)(min|s)", analyze):
                    figures["guest_systemd_analyze_s"] = float(m.group(1)) * (60 if m.group(2) == "min" else 1)
                for k, v in memory(ssh).items():
                    figures[f"mem_after_boot_{k}_mb"] = v
                kubectl(kubeconfig, "create", "deployment", "sleepers", f"--image={BUSYBOX_IMAGE}", "--replicas=10",
                        "--", "sleep", "3600")
                wait("10 pods Running", lambda: kubectl(kubeconfig, "get", "pods", "-l", "app=sleepers", "-o",
                     "jsonpath={.items[*].status.phase}").stdout.split().count("Running") == 10, 900)
                for k, v in memory(ssh).items():
                    figures[f"mem_10_pods_{k}_mb"] = v
                for k, v in runtime_pss(ssh).items():
                    figures[f"pss_10_pods_{k}" + ("" if k == "shim_count" else "_mb")] = v
                figures["pikube_and_os_10_pods_mb"] = figures["mem_10_pods_used_mb"] - figures["mem_10_pods_pods_mb"]
                procs_before, ext4_before = process_writes(ssh)
                before = disk_writes(ssh)
                idle_end = time.monotonic() + args.idle_minutes * 60
                while time.monotonic() < idle_end:
                    time.sleep(min(30.0, max(0.0, idle_end - time.monotonic())))
                written = disk_writes(ssh) - before
                procs_after, ext4_after = process_writes(ssh)
                per_hour = 60 / max(args.idle_minutes, 1e-9)
                figures["idle_minutes"] = args.idle_minutes
                figures["idle_written_mb_per_hour"] = written / MB * per_hour
                figures["idle_ext4_lifetime_written_mb_per_hour"] = (ext4_after - ext4_before) * 1024 / MB * per_hour
                who = writers(procs_before, procs_after)
                for comm, n in who.items():
                    figures[f"idle_writer_{comm}_kb_per_hour"] = n / 1e3 * per_hour
                figures["idle_unattributed_kb_per_hour"] = max(0, written - sum(who.values())) / 1e3 * per_hour
            finally:
                vm.stop()
    finally:  # whatever was measured, even when a later step failed
        width = max((len(k) for k in figures), default=1)
        for k, v in figures.items():
            print(f"{k:<{width}}  {v:10.1f}")
        print("\nfirst boot, from the guest (systemd-analyze blame | head -15; critical-chain pikube-agent.service; "
              "the first-boot, master and agent journals with the seconds since the kernel started):")
        print(boot_report)


if __name__ == "__main__":
    main()
