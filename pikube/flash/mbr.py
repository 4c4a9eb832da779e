"""The MBR partition table of an image or card, read from its first sector.

`pikube flash` refuses an image without a valid dos partition table before
writing anything, and preseeding needs the byte offset of the FAT partition
(p1 in pikube's images) to hand to mtools (`mcopy -i IMAGE@@OFFSET`). Both come
from these 512 bytes, so neither needs `sfdisk`, root, or a loop device.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

from pikube.flash.errors import FlashError

SECTOR = 512
SIGNATURE = b"\x55\xaa"
FAT_TYPES = frozenset({0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E})
GPT_PROTECTIVE = 0xEE
_ENTRIES_AT = 446
_ENTRY = struct.Struct("<B3sB3sII")


class PartitionTableError(FlashError, ValueError):
    """The first sector holds no usable dos partition table; the message says why."""


@dataclass(frozen=True)
class Partition:
    """One primary partition: its number (1-4), type byte, boot flag and extent in bytes."""

    number: int
    type: int
    bootable: bool
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def is_fat(self) -> bool:
        return self.type in FAT_TYPES


@dataclass(frozen=True)
class PartitionTable:
    """The primary partitions of an MBR, in slot order (empty slots left out)."""

    disk_id: int
    partitions: tuple[Partition, ...]

    @property
    def end(self) -> int:
        """Where the last partition ends: an image is at least this long."""
        return max(p.end for p in self.partitions)

    def first_fat(self) -> Partition:
        """The first FAT partition (the board's `/boot/firmware`), or PartitionTableError."""
        for part in self.partitions:
            if part.is_fat:
                return part
        types = ", ".join(f"0x{p.type:02x}" for p in self.partitions)
        raise PartitionTableError(f"it has no FAT partition (partition types {types}), so it is not a "
                                  "pikube image")


def parse(sector: bytes) -> PartitionTable:
    """The dos partition table in `sector` (at least 512 bytes); PartitionTableError if there is none."""
    if len(sector) < SECTOR:
        raise PartitionTableError(f"it is only {len(sector)} bytes long, shorter than one sector")
    if sector[510:512] != SIGNATURE:
        raise PartitionTableError("its first sector has no partition table (no 55 AA boot signature)")
    parts: list[Partition] = []
    for slot in range(4):
        raw = sector[_ENTRIES_AT + 16 * slot: _ENTRIES_AT + 16 * (slot + 1)]
        status, _chs1, ptype, _chs2, lba, sectors = _ENTRY.unpack(raw)
        if ptype == 0 and sectors == 0:
            continue
        if ptype == GPT_PROTECTIVE:
            raise PartitionTableError("it has a GPT partition table; pikube images use a dos (MBR) one")
        if status not in (0x00, 0x80):
            raise PartitionTableError(f"partition {slot + 1} has an invalid status byte 0x{status:02x}")
        if lba == 0 or sectors == 0:
            raise PartitionTableError(f"partition {slot + 1} has an empty or impossible extent "
                                      f"(start sector {lba}, {sectors} sectors)")
        parts.append(Partition(slot + 1, ptype, status == 0x80, lba * SECTOR, sectors * SECTOR))
    if not parts:
        raise PartitionTableError("its partition table is empty")
    ordered = sorted(parts, key=lambda p: p.start)
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise PartitionTableError(f"partitions {before.number} and {after.number} overlap")
    (disk_id,) = struct.unpack_from("<I", sector, 440)
    return PartitionTable(disk_id, tuple(parts))
