"""Which disk may be flashed: a pure decision over `lsblk --json` and the mount table.

The rules are Raspberry Pi Imager's drive filter, made stricter: a disk holding
the running system (`/`, `/boot*`, `/usr`, `/var`, `/home`, swap) is refused
whatever the flags; so is any disk with a mounted partition (naming it, and how
to unmount it), read-only media and an empty reader. NVMe drives and other
fixed disks are refused unless the caller passes `allow_system_disk` (the CLI
then asks for a second confirmation), loop devices unless `allow_loop`. SD
cards count as removable even in an internal reader that reports `rm=0`
(transport `mmc`), unless they are soldered eMMC (which has `boot0` siblings).

Nothing here touches the machine: `pikube.flash.probe` gathers a `Host` and
tests feed recorded ones, so every rule is tested on laptops it never ran on.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SYSTEM_MOUNTS = ("/", "/boot", "/usr", "/var", "/home")


class Why(enum.Enum):
    """Kinds of refusal; `FIXED` and `NVME` can be overridden, `LOOP` by its own flag."""

    NOT_A_DISK = "not-a-disk"
    SYSTEM = "system"
    MOUNTED = "mounted"
    READ_ONLY = "read-only"
    NO_MEDIUM = "no-medium"
    LOOP = "loop"
    NVME = "nvme"
    FIXED = "fixed"


OVERRIDABLE = frozenset({Why.NVME, Why.FIXED})


@dataclass(frozen=True)
class BlockDevice:
    """One node of lsblk's tree (a disk, a partition, a loop device...) with its children."""

    path: str
    kname: str
    devnum: str
    type: str
    removable: bool
    hotplug: bool
    read_only: bool
    transport: str
    size: int
    model: str
    vendor: str
    mountpoints: tuple[str, ...]
    children: tuple[BlockDevice, ...] = ()

    def walk(self) -> Iterator[BlockDevice]:
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def description(self) -> str:
        """'SanDisk Ultra, 31.9 GB, usb' — what a person recognises the card by."""
        name = " ".join(part for part in (self.vendor, self.model) if part and not part.startswith("0x"))
        bits = [name or "no model name", human_size(self.size), self.transport or "unknown transport"]
        return ", ".join(bits)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str


@dataclass(frozen=True)
class Host:
    """What the guard decides on: lsblk's devices, the mount table, swap, and the system's device numbers."""

    devices: tuple[BlockDevice, ...]
    mounts: tuple[Mount, ...] = ()
    swaps: tuple[str, ...] = ()
    # "maj:min" of the devices holding SYSTEM_MOUNTS (from stat), for roots lsblk shows no mountpoint for.
    system_devnums: frozenset[str] = frozenset()

    def all_devices(self) -> Iterator[BlockDevice]:
        for dev in self.devices:
            yield from dev.walk()


@dataclass(frozen=True)
class Refusal:
    why: Why
    text: str


@dataclass(frozen=True)
class Decision:
    """The verdict on one target: refused (with every reason) or allowed, maybe only thanks to a flag."""

    target: str
    device: BlockDevice | None
    refusals: tuple[Refusal, ...]
    overridden: tuple[Refusal, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def needs_second_confirmation(self) -> bool:
        """True when only `allow_system_disk` lets this through: the CLI asks the user to type the path."""
        return self.ok and bool(self.overridden)

    def explain(self) -> str:
        """The refusals as sentences, or '' when allowed."""
        return " ".join(r.text for r in self.refusals)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


# --- Parsing what the machine says ----------------------------------------------------------------


def _flag(value: Any) -> bool:
    """lsblk ≥ 2.33 prints JSON booleans; older ones print "0"/"1"."""
    if isinstance(value, str):
        return value.strip() not in ("", "0", "false")
    return bool(value)


def _device(raw: Mapping[str, Any]) -> BlockDevice:
    points = raw.get("mountpoints")
    if points is None:
        points = [raw.get("mountpoint")]
    size = raw.get("size") or 0
    return BlockDevice(
        path=str(raw["name"]),
        kname=str(raw.get("kname") or raw["name"]),
        devnum=str(raw.get("maj:min") or ""),
        type=str(raw.get("type") or ""),
        removable=_flag(raw.get("rm")),
        hotplug=_flag(raw.get("hotplug")),
        read_only=_flag(raw.get("ro")),
        transport=str(raw.get("tran") or ""),
        size=int(size),
        model=str(raw.get("model") or "").strip(),
        vendor=str(raw.get("vendor") or "").strip(),
        mountpoints=tuple(str(p) for p in points if p),
        children=tuple(_device(child) for child in raw.get("children") or ()),
    )


def parse_lsblk(text: str) -> tuple[BlockDevice, ...]:
    """The device tree from `lsblk --json --bytes --paths --output-all`-style output."""
    return tuple(_device(raw) for raw in json.loads(text).get("blockdevices") or ())


def _unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mounts(text: str) -> tuple[Mount, ...]:
    """/proc/self/mounts (or /etc/mtab) as (source, mount point) pairs."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1])))
    return tuple(mounts)


def parse_swaps(text: str) -> tuple[str, ...]:
    """The swap devices and files named in /proc/swaps."""
    return tuple(_unescape(line.split()[0]) for line in text.splitlines()[1:] if line.split())


# --- The rules -------------------------------------------------------------------------------------


def _is_system_mount(point: str) -> bool:
    """/, /usr, /var, /home, /boot and anything below the last four (/boot/firmware, /var/lib...), swap."""
    if point in ("[SWAP]", *SYSTEM_MOUNTS):
        return True
    return any(point.startswith(p + "/") for p in SYSTEM_MOUNTS if p != "/")


def _mounts_of(host: Host, dev: BlockDevice) -> list[tuple[BlockDevice, str]]:
    """(node, mount point) for every mount of `dev` or anything under it, from lsblk and the mount table."""
    found: list[tuple[BlockDevice, str]] = []
    for node in dev.walk():
        points = list(node.mountpoints)
        points += [m.target for m in host.mounts if m.source in (node.path, node.kname)]
        points += ["[SWAP]" for swap in host.swaps if swap in (node.path, node.kname)]
        for point in dict.fromkeys(points):
            found.append((node, point))
    return found


def _find(host: Host, target: str) -> tuple[BlockDevice | None, BlockDevice | None]:
    """The node named `target` and the top-level device it belongs to."""
    for top in host.devices:
        for node in top.walk():
            if target in (node.path, node.kname):
                return node, top
    return None, None


def _is_emmc(host: Host, dev: BlockDevice) -> bool:
    """Soldered eMMC: it has hardware boot areas (mmcblkNboot0, mmcblkNrpmb), or is one."""
    name = dev.kname.rsplit("/", 1)[-1]
    if re.fullmatch(r"mmcblk\d+(boot\d+|rpmb)", name):
        return True
    return name.startswith("mmcblk") and any(
        other.kname.rsplit("/", 1)[-1] in (name + "boot0", name + "rpmb") for other in host.all_devices())


def _is_card_like(host: Host, dev: BlockDevice) -> bool:
    """Removable media: rm or hotplug, anything on USB, and SD cards (not soldered eMMC)."""
    if dev.transport == "mmc" or dev.kname.rsplit("/", 1)[-1].startswith("mmcblk"):
        return not _is_emmc(host, dev)
    return dev.removable or dev.hotplug or dev.transport == "usb"


def decide(host: Host, target: str, *, allow_system_disk: bool = False, allow_loop: bool = False) -> Decision:
    """May `target` (a resolved /dev path) be overwritten? Every reason is given, not just the first."""
    node, top = _find(host, target)
    if node is None or top is None:
        return Decision(target, None, (Refusal(Why.NOT_A_DISK, f"{target} is not a disk lsblk knows about; "
                                                               "`pikube flash --list` shows the cards."),))
    if node is not top or node.type not in ("disk", "loop"):
        whole = f"; give the whole card: {top.path}" if node is not top else ""
        return Decision(target, node, (Refusal(Why.NOT_A_DISK, f"{target} is a {node.type or 'device'}, not a "
                                                               f"whole disk{whole}."),))
    dev = node
    refusals: list[Refusal] = []
    mounts = _mounts_of(host, dev)
    system = [(n, p) for n, p in mounts if _is_system_mount(p)]
    system += [(n, "/ (or another system directory)") for n in dev.walk()
               if n.devnum and n.devnum in host.system_devnums and not any(s[0] == n for s in system)]
    if system:
        where = ", ".join(f"{p if p != '[SWAP]' else 'swap'} on {n.path}" for n, p in system)
        refusals.append(Refusal(Why.SYSTEM, f"{dev.path} holds the running system ({where}); pikube never "
                                            "overwrites it."))
    others = [(n, p) for n, p in mounts if not _is_system_mount(p)]
    if others and not system:
        listed = ", ".join(f"{n.path} on {p}" for n, p in others)
        commands = " ".join(f"`sudo umount {n.path}`" for n in dict.fromkeys(n for n, _ in others))
        refusals.append(Refusal(Why.MOUNTED, f"{dev.path} is in use: {listed} is mounted; unmount it first "
                                             f"({commands}, or eject it in the file manager without "
                                             "removing the card)."))
    if dev.read_only:
        refusals.append(Refusal(Why.READ_ONLY, f"{dev.path} is read-only (is the card's lock switch on?)."))
    if dev.size == 0:
        refusals.append(Refusal(Why.NO_MEDIUM, f"{dev.path} has no medium (is the card in the reader?)."))
    overridden: list[Refusal] = []
    if dev.type == "loop":
        if not allow_loop:
            refusals.append(Refusal(Why.LOOP, f"{dev.path} is a loop device; pass --allow-loop to write to one."))
    elif dev.transport == "nvme" or dev.kname.rsplit("/", 1)[-1].startswith("nvme"):
        nvme = Refusal(Why.NVME, f"{dev.path} is an NVMe drive ({dev.description}), a computer's internal disk, "
                                 "not a card.")
        (overridden if allow_system_disk else refusals).append(nvme)
    elif not _is_card_like(host, dev):
        fixed = Refusal(Why.FIXED, f"{dev.path} is a fixed, non-removable disk ({dev.description}), not a card.")
        (overridden if allow_system_disk else refusals).append(fixed)
    return Decision(target, dev, tuple(refusals), tuple(overridden))


@dataclass(frozen=True)
class Candidate:
    device: BlockDevice
    note: str


def candidates(host: Host) -> list[Candidate]:
    """The cards `pikube flash --list` shows: writable ones, and cards refused only for being mounted or locked."""
    shown = []
    for dev in host.devices:
        decision = decide(host, dev.path)
        kinds = {r.why for r in decision.refusals}
        if dev.type != "disk" or not kinds <= {Why.MOUNTED, Why.READ_ONLY}:
            continue
        notes = [{Why.MOUNTED: "mounted: unmount before flashing", Why.READ_ONLY: "read-only"}[k]
                 for k in sorted(kinds, key=lambda k: k.value)]
        shown.append(Candidate(dev, "; ".join(notes)))
    return shown
