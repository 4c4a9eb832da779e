"""Putting `pikube.yaml` (the board's first-boot settings) on an image or card, and checking it is there.

The file goes into the root of the FAT partition (p1, the board's
`/boot/firmware`), found through the MBR, written with mtools, flushed to the
medium, and read back with the page cache dropped: a preseed that did not
land is the most reported failure of other flash tools, so it is checked
rather than assumed. Only that one file changes.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core import boardconfig
from core.boardconfig import BoardConfig
from pikube.flash import fat, mbr
from pikube.flash.errors import FlashError
from pikube.flash.source import compression_of
from pikube.flash.target import drop_cache

FILENAME = "pikube.yaml"


class PreseedError(FlashError):
    """The settings could not be written or did not read back; a sentence for the user."""


@dataclass(frozen=True)
class Seeded:
    path: Path
    partition: mbr.Partition
    size: int
    replaced: bool  # there was a pikube.yaml before


def fat_partition(path: Path) -> mbr.Partition:
    """The FAT partition of the image or card at `path` (PreseedError if it has none)."""
    try:
        with open(path, "rb") as file:
            sector = file.read(mbr.SECTOR)
        return mbr.parse(sector).first_fat()
    except OSError as exc:
        raise PreseedError(f"{path} cannot be read: {exc.strerror}.") from None
    except mbr.PartitionTableError as exc:
        raise PreseedError(f"{path} is not a pikube image or card: {exc}.") from None


def _flush(path: Path) -> None:
    """Push mtools' writes to the medium and drop them from the cache, so the re-read sees the card."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
        drop_cache(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _claimed(path: Path, claim: bool) -> Iterator[None]:
    """Hold a card open O_EXCL (the kernel then refuses to mount it) while mtools edits it."""
    if not claim or not stat.S_ISBLK(os.stat(path).st_mode):
        yield
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        raise PreseedError(f"{path} is in use (mounted, or held by another program): {exc.strerror}; unmount it "
                           "first.") from None
    try:
        yield
    finally:
        os.close(fd)


def preseed_bytes(path: Path, data: bytes, *, claim: bool = True) -> Seeded:
    """Write `data` as pikube.yaml into `path`'s FAT partition, flush, re-read and compare.

    A card is claimed (O_EXCL) meanwhile, unless `claim` is False because the caller holds it.
    """
    path = Path(path)
    if compression_of(path):
        raise PreseedError(f"{path} is compressed: preseed the card after flashing it, or decompress the image "
                           "first.")
    part = fat_partition(path)
    mode = os.stat(path).st_mode
    size = os.stat(path).st_size if stat.S_ISREG(mode) else None
    if size is not None and size < part.end:
        raise PreseedError(f"{path} is truncated: its FAT partition ends at byte {part.end} but the file holds "
                           f"{size} bytes.")
    try:
        with _claimed(path, claim):
            before = fat.read_file(path, part.start, FILENAME)
            fat.write_file(path, part.start, FILENAME, data)
            _flush(path)
            back = fat.read_file(path, part.start, FILENAME)
    except fat.FatError as exc:
        raise PreseedError(str(exc)) from None
    if back != data:
        raise PreseedError(f"{FILENAME} on {path} does not read back as written ("
                           f"{'missing' if back is None else f'{len(back)} bytes instead of {len(data)}'}): "
                           "the card is not ready; try again or use another card.")
    return Seeded(path, part, len(data), before is not None)


def preseed(path: Path | str, cfg: BoardConfig) -> Seeded:
    """Write `cfg` as pikube.yaml onto the image or card at `path` (validated, re-read and compared).

    The one call an end-to-end test needs after flashing: `preseed(card, BoardConfig(...))`.
    """
    cfg = boardconfig.from_mapping(boardconfig.to_mapping(cfg), "the settings to preseed")
    return preseed_bytes(Path(path), boardconfig.to_yaml(cfg).encode())
