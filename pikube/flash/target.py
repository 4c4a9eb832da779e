"""The thing being written: a block device (a card) or a regular file (an image for later).

Both are written the same way, but differ in what an all-zero stretch costs and
what it leaves behind: a file is truncated first, so zeros are simply not
written (they stay holes); on a card the old contents must go, so zeros are
cleared with BLKZEROOUT (a loop device punches holes, a card reader gets
zero pages from the kernel) and written by hand where the ioctl is refused.
A block device is opened O_EXCL, so the kernel refuses one that is mounted or
in use even if the guard was fooled.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from pikube.flash.errors import FlashError

BLKGETSIZE64 = 0x80081272
BLKZEROOUT = 0x127F
BLKFLSBUF = 0x1261
ALIGN = 4096
_ZEROS = bytes(4 << 20)


class TargetError(FlashError):
    """The target cannot be opened or written; the message is a sentence for the user."""


@dataclass(frozen=True)
class TargetInfo:
    """What a path is, before anything is opened for writing."""

    path: Path
    is_block: bool
    exists: bool
    size: int  # a file's current length (0 if it does not exist); a block device's capacity once `measured`


def describe(path: Path) -> TargetInfo:
    """A block device, an existing file, or a new file in an existing directory; TargetError otherwise.

    A block device is only stat()ed here, not opened: the guard decides on it first (opening the
    running system's disk may itself be refused). Its size is read by `measured`.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise TargetError(f"{path.parent} does not exist, so {path} cannot be created.") from None
        return TargetInfo(path, False, False, 0)
    if stat.S_ISBLK(st.st_mode):
        return TargetInfo(path, True, True, 0)
    if stat.S_ISREG(st.st_mode):
        return TargetInfo(path, False, True, st.st_size)
    raise TargetError(f"{path} is neither a block device nor a regular file.")


def measured(info: TargetInfo) -> TargetInfo:
    """`info` with a block device's capacity filled in (files are measured by `describe`)."""
    return replace(info, size=block_size(info.path)) if info.is_block else info


def block_size(path: Path) -> int:
    """A block device's capacity in bytes (0 for an empty card reader)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOMEDIUM:
            return 0
        raise TargetError(f"{path} cannot be opened: {exc.strerror}.") from None
    try:
        buf = fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8)
        return int(struct.unpack("Q", buf)[0])
    finally:
        os.close(fd)


class Target:
    """An open target: pwrite, zero a range, fsync, and drop its pages from the cache."""

    def __init__(self, info: TargetInfo, image_size: int) -> None:
        self.info = info
        flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_EXCL if info.is_block else os.O_CREAT)
        try:
            self.fd = os.open(info.path, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise TargetError(f"{info.path} is in use (mounted, or held by another program); "
                                  "unmount it first.") from None
            raise TargetError(f"{info.path} cannot be opened for writing: {exc.strerror}.") from None
        if not info.is_block:
            # A fresh file of the image's length (longer if it was a longer "card"): zeros need no writing.
            os.ftruncate(self.fd, 0)
            os.ftruncate(self.fd, max(image_size, info.size))
        self.zeros_are_free = not info.is_block
        self.zeroout_works = info.is_block

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.pwrite(self.fd, view, offset)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    what = "the image is larger than the card" if self.info.is_block else "its disk is full"
                    raise TargetError(f"{self.info.path} is full at byte {offset}: {what}.") from None
                raise TargetError(f"writing {self.info.path} failed at byte {offset}: {exc.strerror}.") from None
            if n == 0:
                raise TargetError(f"{self.info.path} ended at byte {offset}: the image is larger than the card.")
            view = view[n:]
            offset += n

    def zero(self, offset: int, length: int) -> None:
        """Make [offset, offset+length) read as zeros, as cheaply as the target allows."""
        if self.zeros_are_free:
            return
        if self.zeroout_works and offset % ALIGN == 0 and length % ALIGN == 0:
            try:
                fcntl.ioctl(self.fd, BLKZEROOUT, struct.pack("QQ", offset, length))
                return
            except OSError:
                self.zeroout_works = False  # not supported here: write zeros from now on
        while length > 0:
            n = min(length, len(_ZEROS))
            self.write(offset, memoryview(_ZEROS)[:n])
            offset += n
            length -= n

    def sync(self) -> None:
        """Everything written reaches the medium (the card reader's own cache included, via fsync)."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise TargetError(f"flushing {self.info.path} failed: {exc.strerror}; the card is not reliable.") \
                from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def drop_cache(fd: int) -> None:
    """Forget the cached pages of `fd`'s file or device, so the next reads come from the medium."""
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    if stat.S_ISBLK(os.fstat(fd).st_mode):
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, BLKFLSBUF, 0)
