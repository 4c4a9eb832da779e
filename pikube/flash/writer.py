"""Copying the image onto the target, remembering a SHA-256 per chunk of what was written.

With a bmap only its mapped ranges are read and written (and each range is
checked against the bmap's checksum, as `bmaptool copy` does); without one the
whole image is. All-zero chunks are not written to a file (it stays sparse)
and are zeroed cheaply on a card (`Target.zero`). The chunk digests are what
`verify` compares the card against afterwards: the same bytes, hashed twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from pikube.flash.progress import Progress
from pikube.flash.source import Image, ImageError, open_stream
from pikube.flash.target import Target

CHUNK = 4 << 20
_ZERO = bytes(CHUNK)
_ZERO_DIGESTS: dict[int, bytes] = {}


@dataclass(frozen=True)
class Chunk:
    """Bytes [offset, offset+length) of the image and their SHA-256."""

    offset: int
    length: int
    digest: bytes


@dataclass
class Written:
    """What a write did: the chunks to verify, and how many bytes each way took."""

    chunks: list[Chunk] = field(default_factory=list)
    written: int = 0  # bytes passed to write()
    zeroed: int = 0  # all-zero bytes left as holes or cleared with BLKZEROOUT
    skipped: int = 0  # bytes the bmap says need no copying
    end: int = 0  # where the image ended

    @property
    def covered(self) -> int:
        return self.written + self.zeroed


def zero_digest(length: int) -> bytes:
    digest = _ZERO_DIGESTS.get(length)
    if digest is None:
        digest = _ZERO_DIGESTS[length] = hashlib.sha256(memoryview(_ZERO)[:length]).digest()
    return digest


def extents(image: Image) -> Iterator[tuple[int, int | None, str]]:
    """(start, end, checksum) of each range to copy; end None means 'to the end of the stream'."""
    if image.bmap is None:
        yield 0, None, ""
        return
    for rng in image.bmap.ranges:
        yield rng.start, rng.end, rng.checksum


def _pieces(start: int, end: int | None) -> Iterator[tuple[int, int]]:
    """(offset, length) of the chunk-aligned pieces of [start, end)."""
    pos = start
    while end is None or pos < end:
        length = CHUNK - pos % CHUNK
        if end is not None:
            length = min(length, end - pos)
        yield pos, length
        pos += length


def write(image: Image, target: Target, progress: Progress, *, hashing: bool = True) -> Written:
    """Copy `image` onto `target` and fsync it. ImageError or TargetError (sentences) on failure.

    With `hashing` off (`--no-verify`) nothing is hashed, not even the bmap's ranges (as `bmaptool
    copy --no-verify`): the copy then costs what `dd` costs.
    """
    done = Written()
    progress.start("writing", image.to_write)
    algorithm = image.bmap.checksum_type if image.bmap else "sha256"
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open_stream(image.path, image.compression) as stream:
        pos = 0
        for start, end, checksum in extents(image):
            if start > pos:
                stream.skip(start - pos)
                done.skipped += start - pos
                pos = start
            range_hash = hashlib.new(algorithm) if checksum and hashing else None
            for offset, length in _pieces(start, end):
                n = stream.readinto(view[:length])
                if n < length and (end is not None or not n):
                    if end is not None:
                        raise ImageError(f"{image.path} ended at byte {offset + n}, before the end of "
                                         f"its bmap's range {start}-{end}: the image is truncated or the bmap "
                                         "belongs to another image.")
                    break
                data = view[:n]
                if range_hash is not None:
                    range_hash.update(data)
                _put(target, offset, buf if n == CHUNK else data, done, hashing)
                progress.advance(n)
                pos = offset + n
                if n < length:
                    break
            if range_hash is not None and range_hash.hexdigest() != checksum:
                raise ImageError(f"bytes {start}-{end} of {image.path} do not match the checksum in "
                                 f"{image.bmap_path}: the image is damaged or the bmap belongs to another image.")
        done.end = pos
        if image.bmap is not None and image.size > pos:
            done.skipped += image.size - pos
            done.end = image.size
    if image.bmap is None and image.size_exact and done.end != image.size:
        raise ImageError(f"{image.path} held {done.end} bytes, not the {image.size} its header announced: "
                         "the image is damaged.")
    target.sync()
    progress.finish()
    return done


def _put(target: Target, offset: int, data: bytearray | memoryview, done: Written, hashing: bool) -> None:
    length = len(data)
    if _is_zero(data):
        target.zero(offset, length)
        done.zeroed += length
        if hashing:
            done.chunks.append(Chunk(offset, length, zero_digest(length)))
        return
    target.write(offset, data)
    done.written += length
    if hashing:
        done.chunks.append(Chunk(offset, length, hashlib.sha256(data).digest()))


def _is_zero(data: bytearray | memoryview) -> bool:
    """All zeros? A whole chunk is compared at memcmp speed; a piece is first checked at both ends."""
    if isinstance(data, bytearray):
        return data == _ZERO
    if data[0] or data[-1]:
        return False
    return data.tobytes() == bytes(len(data))
