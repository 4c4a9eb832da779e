"""Grow the root partition and its ext4 file system to the end of the card.

The image is as small as its contents; the card is bigger. This is Debian's
raspi `rpi-resizerootfs` done once and checked: find the disk and partition
holding `/` (from the root's device number through /sys, so `/dev/root` or a
LABEL= mount does not matter), let `sfdisk -N` move the partition's end to the
end of the disk, tell the kernel (`partx -u`: the partition is in use, so the
whole table cannot be re-read), then `resize2fs` grows the mounted file system
online. A partition that already ends within 1 MiB of the disk's end is left
alone, so the step is idempotent.

The same code grows a partition inside an image *file* (resize2fs then reaches
the file system through `FILE?offset=BYTES` with an explicit size); the tests
use that on a small image made with sfdisk and mkfs.ext4, with no loop device.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from core.boardconfig import BoardConfig
from pikube.firstboot.host import Host, Runner, read_text
from pikube.firstboot.step import Outcome, StepError, changed, skipped

SECTOR = 512
SLACK_SECTORS = 2048  # 1 MiB: less than this left after the partition is "already grown"


@dataclass(frozen=True)
class RootPartition:
    disk: str  # /dev/mmcblk0, or an image file
    number: int
    device: str  # /dev/mmcblk0p2, or "" for an image file


def locate(sys_root: Path, dev: int) -> RootPartition:
    """The disk and partition number of block device `dev` (an st_dev), read from /sys under `sys_root`."""
    major, minor = os.major(dev), os.minor(dev)
    node = sys_root / "dev" / "block" / f"{major}:{minor}"
    number_text = read_text(node / "partition").strip()
    if not number_text.isdigit():
        raise StepError(f"the root file system (device {major}:{minor}) is not on a disk partition")
    real = node.resolve()
    return RootPartition(disk=f"/dev/{real.parent.name}", number=int(number_text), device=f"/dev/{real.name}")


def _size_sectors(disk: str) -> int:
    with open(disk, "rb") as f:
        return f.seek(0, os.SEEK_END) // SECTOR


def _partition(run: Runner, disk: str, number: int) -> tuple[int, int]:
    out = run(["sfdisk", "--json", disk]).stdout
    try:
        table = json.loads(out)["partitiontable"]
        parts = table["partitions"]
        if table.get("sectorsize", SECTOR) != SECTOR:
            raise StepError(f"{disk} has {table['sectorsize']}-byte sectors; only 512 is handled")
    except (ValueError, KeyError, TypeError):
        raise StepError(f"`sfdisk --json {disk}` gave no partition table") from None
    for p in parts:
        node = str(p.get("node", ""))
        if node.endswith(str(number)) and not node[:-len(str(number))].endswith(tuple("0123456789")):
            return int(p["start"]), int(p["size"])
    raise StepError(f"{disk} has no partition {number}")


def grow(run: Runner, part: RootPartition) -> tuple[bool, str]:
    """Grow partition `part.number` of `part.disk` and its ext4 to the disk's end; (changed, what happened)."""
    total = _size_sectors(part.disk)
    start, size = _partition(run, part.disk, part.number)
    end = start + size
    if total - end < SLACK_SECTORS:
        return False, f"partition {part.number} of {part.disk} already fills it ({size * SECTOR >> 20} MiB)"
    run(["sfdisk", "--force", "--no-reread", "--no-tell-kernel", "-N", str(part.number), part.disk], input=",+\n")
    start, new_size = _partition(run, part.disk, part.number)
    if stat.S_ISBLK(os.stat(part.disk).st_mode):
        run(["partx", "--update", "--nr", str(part.number), part.disk])
        run(["resize2fs", part.device])
    else:
        run(["resize2fs", f"{part.disk}?offset={start * SECTOR}", f"{new_size}s"])
    return True, (f"partition {part.number} of {part.disk} grown from {size * SECTOR >> 20} MiB to "
                  f"{new_size * SECTOR >> 20} MiB, file system too")


def growfs(host: Host, _cfg: BoardConfig) -> Outcome:
    if not host.live:
        return skipped("not the running system's root")
    part = locate(host.path("/sys"), os.stat(host.root).st_dev)
    did, what = grow(host.run, part)
    return changed(did, what, what)
