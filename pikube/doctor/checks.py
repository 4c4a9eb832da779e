"""The Raspberry Pi pitfalls, one check each: what is wrong, why it matters, and the fix.

A `Finding` is OK, WARN (pikube works, but worse) or FAIL (pikube will not
work: enable-master / enable-worker refuse to go on). A finding may carry a
`Fix`: steps (write a file, run a command) that `pikube doctor --fix` applies
when the fix is safe — nothing that could leave the board unbootable or cut
it off the network, and nothing that needs a judgement call (swap, the
iptables backend, the clock) — the rest is told, not done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from core import firstboot
from pikube.doctor import dnscheck
from pikube.doctor.host import Host

GiB = 1024**3
MiB = 1024**2
CMDLINE_FILES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")
MEMORY_FLAGS = ("cgroup_enable=memory", "cgroup_memory=1")
SYSCTL_FILE = "/etc/sysctl.d/90-pikube.conf"
MODULES_FILE = "/etc/modules-load.d/pikube.conf"
# A clock before this is certainly wrong (a Pi without a battery-backed clock boots in the past).
EARLIEST_SANE_TIME = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Write:
    path: str
    text: str


Step = Run | Write


@dataclass(frozen=True)
class Fix:
    """How to fix a finding: words for the user, and steps `--fix` runs when `safe`."""

    text: str
    steps: tuple[Step, ...] = ()
    safe: bool = False
    # Said after applying it, e.g. that a reboot is needed.
    after: str = ""


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: Fix | None = None


@dataclass(frozen=True)
class Context:
    """What the checks need to know besides the host: where pikube's data is, which engine, which backend."""

    data_dir: str = "/var/lib/pikube"
    docker_host: str = DEFAULT_DOCKER_SOCKET
    backend: str = "host-gw"
    # CA certificates (PEM) the clock must not be earlier than: the cluster's, when known.
    cas: tuple[bytes, ...] = field(default=())
    # The agent's cluster DNS address and domain ("" = no cluster DNS).
    cluster_dns: str = "10.96.0.10"
    cluster_domain: str = "cluster.local"


def _ok(check: str, detail: str) -> Finding:
    return Finding(check, Status.OK, detail)


def cgroup_version(host: Host) -> int:
    return 2 if host.exists("/sys/fs/cgroup/cgroup.controllers") else 1


def check_cgroup_version(host: Host, ctx: Context) -> Finding:
    if cgroup_version(host) == 2:
        return _ok("cgroups", "cgroup v2 (unified hierarchy)")
    return _ok("cgroups", "cgroup v1 (Docker's cgroupfs driver; fine, cgroup v2 is the modern default)")


def _memory_cgroup_on(host: Host) -> bool:
    if cgroup_version(host) == 2:
        return "memory" in (host.read_text("/sys/fs/cgroup/cgroup.controllers") or "").split()
    for line in (host.read_text("/proc/cgroups") or "").splitlines():
        parts = line.split()
        if parts and parts[0] == "memory":
            return len(parts) >= 4 and parts[3] == "1"
    return False


def check_memory_cgroup(host: Host, ctx: Context) -> Finding:
    if _memory_cgroup_on(host):
        return _ok("memory-cgroup", "the memory cgroup is enabled (memory limits are enforced)")
    detail = ("the memory cgroup is off (Raspberry Pi OS boots with cgroup_disable=memory): pods' memory "
              "limits cannot be enforced and Docker refuses them")
    flags = " ".join(MEMORY_FLAGS)
    for path in CMDLINE_FILES:
        text = host.read_text(path)
        if text is None:
            continue
        words = text.split()
        new = " ".join([w for w in words if w != "cgroup_disable=memory"]
                       + [f for f in MEMORY_FLAGS if f not in words]) + "\n"
        return Finding("memory-cgroup", Status.FAIL, detail, Fix(
            f"add `{flags}` to the single line of {path} (and drop cgroup_disable=memory), then reboot",
            (Write(path, new),), safe=True, after="reboot the board for the kernel command line to take effect"))
    return Finding("memory-cgroup", Status.FAIL, detail, Fix(
        f"add `{flags}` to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then "
        "`sudo update-grub`), then reboot"))


def check_iptables(host: Host, ctx: Context) -> Finding:
    result = host.run(["iptables", "--version"])
    if result is None or result[0] != 0:
        return _ok("iptables", "iptables is not installed (pikube's services use nftables directly)")
    version = result[1].strip()
    if "legacy" in version:
        return Finding("iptables", Status.WARN,
                       f"{version}: Docker writes legacy iptables rules while pikube's services are in nftables; "
                       "both run, but `nft list ruleset` shows only half the picture", Fix(
                           "switch to the nftables backend: `sudo update-alternatives --set iptables "
                           "/usr/sbin/iptables-nft && sudo update-alternatives --set ip6tables "
                           "/usr/sbin/ip6tables-nft`, then reboot"))
    return _ok("iptables", f"{version} (the nftables backend, like pikube's service rules)")


def check_nftables(host: Host, ctx: Context) -> Finding:
    result = host.run(["nft", "--version"])
    if result is not None and result[0] == 0:
        return _ok("nftables", result[1].strip().splitlines()[0] if result[1].strip() else "nft is installed")
    return Finding("nftables", Status.FAIL, "nft is missing: ClusterIP and NodePort services are nftables rules",
                   Fix("install it: `sudo apt-get install -y nftables`",
                       (Run(("apt-get", "install", "-y", "nftables")),), safe=True))


def check_vxlan(host: Host, ctx: Context) -> Finding:
    if host.exists("/sys/module/vxlan"):
        return _ok("vxlan", "the vxlan driver is loaded (or built in)")
    modinfo = host.run(["modinfo", "vxlan"])
    if modinfo is not None and modinfo[0] == 0:
        return _ok("vxlan", "the vxlan module is available (loaded when first used)")
    status = Status.FAIL if ctx.backend == "vxlan" else Status.WARN
    return Finding("vxlan", status, "this kernel has no vxlan driver: the vxlan backend cannot work "
                   "(host-gw, the default on one switch, does not need it)",
                   Fix("install the kernel's extra modules (Debian: `linux-image-$(uname -r)`; Raspberry Pi OS: "
                       "`raspberrypi-kernel`), or use `--backend host-gw`"))


def check_ip_forward(host: Host, ctx: Context) -> Finding:
    value = (host.read_text("/proc/sys/net/ipv4/ip_forward") or "").strip()
    if value == "1":
        return _ok("ip-forward", "IPv4 forwarding is on")
    return Finding("ip-forward", Status.WARN,
                   "IPv4 forwarding is off: pods cannot reach other boards until the agent turns it on at start",
                   Fix(f"turn it on now and at every boot ({SYSCTL_FILE})",
                       (Write(SYSCTL_FILE, "net.ipv4.ip_forward = 1\n"),
                        Run(("sysctl", "-w", "net.ipv4.ip_forward=1"))), safe=True))


def check_bridge_netfilter(host: Host, ctx: Context) -> Finding:
    if host.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
        return _ok("bridge-netfilter", "bridge netfilter is on (a pod can reach its own service's other pods "
                   "on the same board without masquerading)")
    return Finding("bridge-netfilter", Status.WARN,
                   "bridge netfilter (br_netfilter) is not loaded: pod -> service -> pod on one board is then "
                   "masqueraded, so the server sees the bridge's address instead of the client's", Fix(
                       f"load it now and at every boot ({MODULES_FILE})",
                       (Write(MODULES_FILE, "br_netfilter\nvxlan\n"), Run(("modprobe", "br_netfilter"))),
                       safe=True))


def check_swap(host: Host, ctx: Context) -> Finding:
    lines = (host.read_text("/proc/swaps") or "").splitlines()[1:]
    total_kib = 0
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            total_kib += int(parts[2])
    if not lines:
        return _ok("swap", "no swap")
    return Finding("swap", Status.WARN,
                   f"{total_kib // 1024} MiB of swap is on: a board that swaps to its SD card stalls (heartbeats "
                   "are missed, the node looks lost) and wears the card out", Fix(
                       "turn it off: `sudo dphys-swapfile swapoff && sudo systemctl disable dphys-swapfile` on "
                       "Raspberry Pi OS, otherwise `sudo swapoff -a` and remove the swap line from /etc/fstab"))


def ca_not_before(pem: bytes) -> float:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).not_valid_before_utc.timestamp()


def _utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def check_clock(host: Host, ctx: Context) -> Finding:
    now = host.now()
    fix = Fix("set the time (`sudo date -s '2025-06-01 12:00'`) and keep it right with NTP "
              "(`sudo timedatectl set-ntp true`): a Pi has no battery-backed clock")
    cas = list(ctx.cas)
    for path in (Path(ctx.data_dir) / "master/pki/ca.crt", Path(ctx.data_dir) / "agent/pki/ca.crt"):
        text = host.read_text(str(path))
        if text:
            cas.append(text.encode())
    for pem in cas:
        try:
            not_before = ca_not_before(pem)
        except ValueError:
            continue
        if now < not_before:
            return Finding("clock", Status.FAIL,
                           f"the clock ({_utc(now)}) is earlier than the cluster CA's notBefore "
                           f"({_utc(not_before)}): every certificate looks not yet valid, so TLS fails", fix)
    if now < EARLIEST_SANE_TIME:
        return Finding("clock", Status.WARN, f"the clock says {_utc(now)}, which cannot be right", fix)
    return _ok("clock", f"the clock says {_utc(now)}" + (", after the cluster CA's notBefore" if cas else ""))


def check_docker(host: Host, ctx: Context) -> Finding:
    ok, what = host.docker_version(ctx.docker_host)
    if ok:
        return _ok("docker", f"Docker {what} answers at {ctx.docker_host}")
    detail = f"no Docker engine answers at {ctx.docker_host} ({what}): pods run in Docker"
    if ctx.docker_host == DEFAULT_DOCKER_SOCKET and host.run(["systemctl", "--version"]) is not None:
        return Finding("docker", Status.FAIL, detail, Fix(
            "install and start it: `sudo apt-get install -y docker.io && sudo systemctl enable --now docker`",
            (Run(("systemctl", "enable", "--now", "docker")),), safe=True))
    return Finding("docker", Status.FAIL, detail,
                   Fix("install Docker (`sudo apt-get install -y docker.io`) and start dockerd"))


def check_disk(host: Host, ctx: Context) -> Finding:
    total, free = host.disk(ctx.data_dir)
    used = total - free
    detail = f"{free / GiB:.1f} GiB free of {total / GiB:.1f} GiB on the filesystem of {ctx.data_dir}"
    fix = Fix("free space: `docker image prune -a` removes unused images; move logs or data to a larger card")
    if free < GiB:
        return Finding("disk", Status.FAIL, detail + ": images and the store need more than 1 GiB", fix)
    if free < 2 * GiB or (total and free / total < 0.10):
        return Finding("disk", Status.WARN, detail + f" ({used * 100 // max(total, 1)}% used): pods' disk "
                       "pressure starts below 10%", fix)
    return _ok("disk", detail)


def check_first_boot(host: Host, ctx: Context) -> Finding:
    """What first boot made of the card's pikube.yaml (never FAIL: it must not keep enable-* from running)."""
    text = host.read_text(str(Path(ctx.data_dir) / firstboot.STATE_PATH.name))
    rec = firstboot.from_json(text) if text else None
    if rec is None:
        return _ok("first-boot", "no first-boot record (this board was not set up from a pikube image)")
    source = rec.source or "pikube.yaml"
    again = Fix(f"see `journalctl -u pikube-firstboot`; correct {source} (docs/firstboot.md) and reboot, or run "
                "`sudo pikube firstboot`")
    if rec.result == firstboot.INVALID:
        return Finding("first-boot", Status.WARN, f"{source} is not valid, so none of it was applied: "
                       + " ".join(rec.problems), again)
    if rec.result == firstboot.FAILED:
        failed = "; ".join(f"{s.name}: {s.error}" for s in rec.failed_steps)
        return Finding("first-boot", Status.WARN, f"first boot could not apply all of {source} ({failed})", again)
    if rec.result == firstboot.RUNNING:
        last = rec.steps[-1].name if rec.steps else "the start"
        return Finding("first-boot", Status.WARN, f"first boot has been applying {source} since {rec.started} "
                       f"(done up to {last}; the role step may be waiting for its master)", again)
    if rec.result == firstboot.ABSENT:
        return _ok("first-boot", "first boot found no pikube.yaml and only grew the root file system")
    return _ok("first-boot", f"first boot applied {source} at {rec.finished} ({len(rec.steps)} steps)")


def check_node_resolver(host: Host, ctx: Context) -> Finding:
    found = dnscheck.node_resolver(host, ctx.cluster_dns)
    if found.ok:
        return _ok("node-resolver", found.detail)
    return Finding("node-resolver", Status.WARN, found.detail,
                   Fix(f"put the LAN's DNS server (often the router) in {dnscheck.RESOLV_CONF}: nameserver <address>"))


def check_cluster_dns(host: Host, ctx: Context) -> Finding:
    found = dnscheck.cluster_dns_answers(host, ctx.cluster_dns, ctx.cluster_domain)
    if found.ok:
        return _ok("cluster-dns", found.detail)
    return Finding("cluster-dns", Status.WARN, found.detail,
                   Fix("look at the agent's log (journalctl -u pikube-agent) for 'cluster DNS' lines"))


CHECKS: tuple[Callable[[Host, Context], Finding], ...] = (
    check_memory_cgroup, check_cgroup_version, check_iptables, check_nftables, check_vxlan, check_ip_forward,
    check_bridge_netfilter, check_swap, check_clock, check_docker, check_disk, check_first_boot,
    check_node_resolver, check_cluster_dns,
)


def run_checks(host: Host, ctx: Context, checks: Sequence[Callable[[Host, Context], Finding]] = CHECKS,
               ) -> list[Finding]:
    return [check(host, ctx) for check in checks]


def blocking(findings: Sequence[Finding]) -> list[str]:
    """The FAIL findings as sentences: what keeps enable-master / enable-worker from going on."""
    return [f"{f.check}: {f.detail}" for f in findings if f.status is Status.FAIL]
