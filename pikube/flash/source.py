"""Reading an image: raw `.img`, or `.img.zst` / `.xz` / `.gz` decompressed as a stream.

Everything `pikube flash` must know before it writes a byte comes from here:
that the file exists and is an image (a dos partition table with a FAT
partition in its first sector), how long it is once decompressed (so a card
that is too small is refused up front), and its bmap if one lies beside it.
Raw images are read sparse-aware: holes (SEEK_HOLE) come back as zeros
without touching the disk.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import lzma
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from pikube.flash import bmap as bmapfile
from pikube.flash import mbr
from pikube.flash.errors import FlashError

COMPRESSIONS = {".zst": "zst", ".xz": "xz", ".gz": "gz"}


class ImageError(FlashError, ValueError):
    """The image cannot be flashed; the message is a sentence for the user."""


class Stream(Protocol):
    """A forward-only reader of the decompressed image; reads fill the buffer unless the image ends."""

    def readinto(self, view: memoryview) -> int: ...

    def read(self, size: int) -> bytes: ...

    def skip(self, size: int) -> None: ...


@dataclass(frozen=True)
class Image:
    """An image checked enough to be flashed: its size, partition table and bmap."""

    path: Path
    compression: str  # "" for a raw image
    size: int  # decompressed bytes (from the bmap, the file, or the compressor's index)
    size_exact: bool  # False when only the partition table's end was known
    table: mbr.PartitionTable
    bmap: bmapfile.Bmap | None
    bmap_path: Path | None

    @property
    def to_write(self) -> int:
        """Bytes that will be written: the mapped ones with a bmap, else all of them."""
        return self.bmap.mapped_bytes if self.bmap else self.size


def compression_of(path: Path) -> str:
    return COMPRESSIONS.get(path.suffix.lower(), "")


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ImageError(f"reading this image needs `{name}`: install the {package} package.")
    return found


class _RawStream:
    """A raw image file; holes read as zeros without a read() (SEEK_DATA/SEEK_HOLE)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._pos = 0
        self._size = os.fstat(self._fd).st_size

    def _seek(self, whence: int, default: int) -> int:
        try:
            return os.lseek(self._fd, self._pos, whence)
        except OSError as exc:
            # ENXIO from SEEK_DATA: nothing but hole up to the end; anything else: no hole support.
            return self._size if exc.errno == errno.ENXIO else default

    def readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view) and (n := self._part(view[got:])):
            got += n
        return got

    def _part(self, view: memoryview) -> int:
        """Fill the start of `view`: zeros up to the end of a hole, or data up to the next hole."""
        size = min(len(view), self._size - self._pos)
        if size <= 0:
            return 0
        data_at = self._seek(os.SEEK_DATA, self._pos)
        if data_at > self._pos:
            n = min(size, data_at - self._pos)
            view[:n] = _zeros(n)
        else:
            hole_at = self._seek(os.SEEK_HOLE, self._size)
            n = os.preadv(self._fd, [view[:min(size, max(hole_at - self._pos, 1))]], self._pos)
        self._pos += n
        return n

    def read(self, size: int) -> bytes:
        return _read(self, size)

    def skip(self, size: int) -> None:
        self._pos = min(self._pos + size, self._size)

    def close(self) -> None:
        os.close(self._fd)


_ZEROS = bytes(4 << 20)


def _zeros(n: int) -> bytes | memoryview:
    return memoryview(_ZEROS)[:n] if n <= len(_ZEROS) else bytes(n)


def _read(stream: Stream, size: int) -> bytes:
    buf = bytearray(size)
    n = stream.readinto(memoryview(buf))
    del buf[n:]
    return bytes(buf)


class _FileStream:
    """A decompressing file object (gzip, lzma) or a decompressor's pipe, read forward only."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def readinto(self, view: memoryview) -> int:
        got = 0
        while got < len(view):
            n = self._file.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
        return got

    def read(self, size: int) -> bytes:
        return _read(self, size)

    def skip(self, size: int) -> None:
        buf = memoryview(bytearray(min(size, 4 << 20)))
        while size > 0:
            n = self.readinto(buf[:min(size, len(buf))])
            if not n:
                return
            size -= n


@contextlib.contextmanager
def open_stream(path: Path, compression: str) -> Iterator[Stream]:
    """The decompressed bytes of the image, from offset 0. Decompression errors become ImageError."""
    if compression == "":
        raw = _RawStream(path)
        try:
            yield raw
        finally:
            raw.close()
        return
    if compression == "zst":
        zstd = _tool("zstd", "zstd")
        proc = subprocess.Popen([zstd, "-dcq", "--no-progress", str(path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            yield _FileStream(proc.stdout)
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            err = proc.stderr.read().decode(errors="replace").strip()
            proc.stderr.close()
        if proc.returncode != 0 and err:
            raise ImageError(f"{path} is damaged: zstd says {err}")
        return
    opener = gzip.open if compression == "gz" else lzma.open
    try:
        with opener(path, "rb") as file:
            yield _FileStream(file)  # type: ignore[arg-type]
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise ImageError(f"{path} is damaged or not a .{compression} file ({exc}).") from None


def _listed_size(path: Path, compression: str) -> int | None:
    """The decompressed size as the format records it, when it does."""
    if compression == "":
        return path.stat().st_size
    if compression == "xz" and shutil.which("xz"):
        proc = subprocess.run(["xz", "--robot", "--list", str(path)], capture_output=True, text=True,
                              check=False, timeout=60)
        for line in proc.stdout.splitlines():
            fields = line.split("\t")
            if fields[0] == "totals" and len(fields) > 4 and fields[4].isdigit():
                return int(fields[4])
        return None
    if compression == "zst" and shutil.which("zstd"):
        proc = subprocess.run(["zstd", "-lv", str(path)], capture_output=True, text=True, check=False, timeout=60)
        match = re.search(r"Decompressed Size:.*\((\d+) B\)", proc.stdout)
        return int(match.group(1)) if match else None
    return None


def _gzip_size(path: Path, at_least: int) -> int:
    """gzip records the size modulo 4 GiB; the partition table's end says how many times it wrapped."""
    with open(path, "rb") as file:
        file.seek(-4, os.SEEK_END)
        size = int.from_bytes(file.read(4), "little")
    while size < at_least:
        size += 1 << 32
    return size


def inspect(path: Path, *, use_bmap: bool = True) -> Image:
    """Check that `path` is an image pikube can flash; ImageError (a sentence) if not."""
    if not path.exists():
        raise ImageError(f"the image {path} does not exist.")
    if not path.is_file():
        raise ImageError(f"the image {path} is not a file.")
    if not os.access(path, os.R_OK):
        raise ImageError(f"the image {path} is not readable by this user.")
    compression = compression_of(path)
    with open_stream(path, compression) as stream:
        first = stream.read(mbr.SECTOR)
    try:
        table = mbr.parse(first)
        table.first_fat()
    except mbr.PartitionTableError as exc:
        raise ImageError(f"{path} is not a pikube image: {exc}.") from None
    listed = _gzip_size(path, table.end) if compression == "gz" else _listed_size(path, compression)
    bmap_path = bmapfile.beside(path) if use_bmap else None
    bmap = None
    if bmap_path is not None:
        try:
            bmap = bmapfile.load(bmap_path)
        except (OSError, bmapfile.BmapError) as exc:
            raise ImageError(f"the block map beside the image is unusable: {exc} (move it away, or pass "
                             "--no-bmap to write every byte).") from None
        if listed is not None and listed != bmap.image_size:
            raise ImageError(f"{bmap_path} describes a {bmap.image_size}-byte image but {path} holds {listed} "
                             "bytes: it belongs to another image (move it away, or pass --no-bmap).")
    size = bmap.image_size if bmap else listed
    exact = size is not None
    size = size if size is not None else table.end
    if size < table.end:
        raise ImageError(f"{path} is truncated: its partitions end at byte {table.end} but it holds only {size} "
                         "bytes (an interrupted download?).")
    return Image(path, compression, size, exact, table, bmap, bmap_path)
