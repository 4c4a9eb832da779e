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


def write(image: Image, target: Target, progress: Progress) -> Written:
    """Copy `image` onto `target` and fsync it. ImageError or TargetError (sentences) on failure."""
    done = Written()
    progress.start("writing", image.to_write)
    algorithm = image.bmap.checksum_type if image.bmap else "sha256"
    with open_stream(image.path, image.compression) as stream:
        pos = 0
        for start, end, checksum in extents(image):
            if start > pos:
                stream.skip(start - pos)
                done.skipped += start - pos
                pos = start
            range_hash = hashlib.new(algorithm) if checksum else None
            for offset, length in _pieces(start, end):
                data = stream.read(length)
                if len(data) < length and (end is not None or not data):
                    if end is not None:
                        raise ImageError(f"{image.path} ended at byte {offset + len(data)}, before the end of "
                                         f"its bmap's range {start}-{end}: the image is truncated or the bmap "
                                         "belongs to another image.")
                    break
                if range_hash is not None:
                    range_hash.update(data)
                _put(target, offset, data, done)
                progress.advance(len(data))
                pos = offset + len(data)
                if len(data) < length:
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


def _put(target: Target, offset: int, data: bytes, done: Written) -> None:
    if _is_zero(data):
        target.zero(offset, len(data))
        done.zeroed += len(data)
        done.chunks.append(Chunk(offset, len(data), zero_digest(len(data))))
        return
    target.write(offset, data)
    done.written += len(data)
    done.chunks.append(Chunk(offset, len(data), hashlib.sha256(data).digest()))


def _is_zero(data: bytes) -> bool:
    # Comparing with a zero buffer runs at memcmp speed; only a partial chunk needs a slice.
    if len(data) == CHUNK:
        return data == _ZERO
    return data == memoryview(_ZERO)[:len(data)]
