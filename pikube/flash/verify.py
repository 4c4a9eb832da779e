"""Reading the card back and comparing it with what was written, chunk by chunk.

`bmaptool copy` checks the image it read; a card that silently drops writes
(a fake-capacity card, a failing reader) passes that check. Like Raspberry Pi
Imager, pikube re-reads exactly the bytes it wrote after `fsync`, with the page
cache dropped so the bytes come from the medium, and compares SHA-256s. A
mismatch names the first differing byte, found by re-reading that chunk of
the image, so the user knows whether the card is fake (differences from a
round size on) or flaky.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pikube.flash.errors import FlashError
from pikube.flash.progress import Progress
from pikube.flash.source import Image, open_stream
from pikube.flash.target import drop_cache
from pikube.flash.writer import Chunk


class VerifyError(FlashError):
    """The card does not hold what was written; `offset` is the first differing byte."""

    def __init__(self, message: str, offset: int, bad_chunks: int) -> None:
        super().__init__(message)
        self.offset = offset
        self.bad_chunks = bad_chunks


@dataclass(frozen=True)
class Verified:
    bytes: int
    chunks: int


def _pread_full(fd: int, length: int, offset: int) -> bytes:
    parts, got = [], 0
    while got < length:
        data = os.pread(fd, length - got, offset + got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def verify(image: Image, path: Path, chunks: list[Chunk], progress: Progress) -> Verified:
    """Compare `path` with `chunks`; VerifyError naming the first bad byte if they differ."""
    total = sum(c.length for c in chunks)
    progress.start("verifying", total)
    bad: list[Chunk] = []
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        drop_cache(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        for chunk in chunks:
            data = _pread_full(fd, chunk.length, chunk.offset)
            if hashlib.sha256(data).digest() != chunk.digest:
                bad.append(chunk)
            progress.advance(chunk.length)
        first = bad[0] if bad else None
        on_card = _pread_full(fd, first.length, first.offset) if first else b""
    finally:
        os.close(fd)
    if first is not None:
        offset = first.offset + _first_difference(image, first, on_card)
        raise VerifyError(f"verify failed: {path} differs from the image at byte {offset} (0x{offset:x}); "
                          f"{len(bad)} of {len(chunks)} chunks differ. The card is NOT ready: flash it again, "
                          "and if it fails again use another card (it may be fake or worn out).",
                          offset, len(bad))
    progress.finish()
    return Verified(total, len(chunks))


def _first_difference(image: Image, chunk: Chunk, on_card: bytes) -> int:
    """Index of the first byte of `chunk` where the card differs from the image (re-read from the image)."""
    with open_stream(image.path, image.compression) as stream:
        stream.skip(chunk.offset)
        expected = stream.read(chunk.length)
    block = 4096
    for start in range(0, min(len(expected), len(on_card)), block):
        if expected[start:start + block] != on_card[start:start + block]:
            pairs = zip(expected[start:start + block], on_card[start:start + block], strict=False)
            return start + next(i for i, (want, got) in enumerate(pairs) if want != got)
    return min(len(expected), len(on_card))
