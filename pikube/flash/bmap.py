"""Block maps (`IMAGE.bmap`, bmap-tools' XML): which byte ranges of an image hold data.

With a bmap beside the image, `pikube flash` writes only the mapped ranges (a
pikube image is about half empty filesystem) and checks each range against its
checksum as it goes, as `bmaptool copy` does; the read-back verify then covers
exactly those ranges. Parsed here rather than through bmap-tools' Python
package, which Debian installs for its own interpreter only.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pikube.flash.errors import FlashError

_ALGORITHMS = {"sha1": "sha1", "sha256": "sha256"}


class BmapError(FlashError, ValueError):
    """The bmap is unreadable, inconsistent, or does not belong to the image."""


@dataclass(frozen=True)
class Range:
    """Mapped bytes [start, end) of the image and the checksum of exactly those bytes ('' if none)."""

    start: int
    end: int
    checksum: str

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Bmap:
    """An image's size, its mapped ranges in order, and the checksum type of the ranges."""

    image_size: int
    block_size: int
    ranges: tuple[Range, ...]
    checksum_type: str

    @property
    def mapped_bytes(self) -> int:
        return sum(r.size for r in self.ranges)


def beside(image: Path) -> Path | None:
    """`pikube.img.bmap` for `pikube.img`, `pikube.img.zst`, `.xz` or `.gz`, if it exists."""
    name = image.name
    candidates = [name + ".bmap"]
    for suffix in (".zst", ".xz", ".gz"):
        if name.endswith(suffix):
            candidates.insert(0, name[: -len(suffix)] + ".bmap")
    for candidate in candidates:
        path = image.with_name(candidate)
        if path.is_file():
            return path
    return None


def load(path: Path) -> Bmap:
    """The bmap at `path`, its own checksum checked; BmapError if anything does not add up."""
    raw = path.read_bytes()
    try:
        return parse(raw)
    except BmapError as exc:
        raise BmapError(f"{path}: {exc}") from None


def _text(root: ET.Element, tag: str) -> str:
    node = root.find(tag)
    if node is None or node.text is None:
        raise BmapError(f"it has no <{tag}>")
    return node.text.strip()


def _int(root: ET.Element, tag: str) -> int:
    text = _text(root, tag)
    if not text.isdigit():
        raise BmapError(f"<{tag}> is not a number: {text!r}")
    return int(text)


def parse(raw: bytes) -> Bmap:
    """A bmap from its XML bytes (format versions 1.x and 2.x)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise BmapError(f"it is not valid XML ({exc})") from None
    version = root.get("version", "")
    major = version.split(".")[0]
    if root.tag != "bmap" or major not in ("1", "2"):
        raise BmapError(f"it is not a bmap of a known version (<{root.tag} version={version!r}>)")
    image_size = _int(root, "ImageSize")
    block_size = _int(root, "BlockSize")
    if block_size <= 0:
        raise BmapError("its block size is 0")
    checksum_type = _text(root, "ChecksumType").lower() if root.find("ChecksumType") is not None else "sha1"
    if checksum_type not in _ALGORITHMS:
        raise BmapError(f"its checksum type {checksum_type!r} is unknown")
    own = root.find("BmapFileChecksum") if major == "2" else root.find("BmapFileSHA1")
    if own is not None and own.text:
        expected = own.text.strip()
        zeroed = raw.replace(expected.encode(), b"0" * len(expected), 1)
        actual = hashlib.new(checksum_type if major == "2" else "sha1", zeroed).hexdigest()
        if actual != expected:
            raise BmapError("its own checksum does not match: the file is damaged or was edited")
    block_map = root.find("BlockMap")
    if block_map is None:
        raise BmapError("it has no <BlockMap>")
    ranges: list[Range] = []
    for node in block_map.findall("Range"):
        text = (node.text or "").strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", text)
        if not match:
            raise BmapError(f"a <Range> is not 'first-last': {text!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        start, end = first * block_size, min((last + 1) * block_size, image_size)
        if last < first or start >= image_size or (ranges and start < ranges[-1].end):
            raise BmapError(f"the range {text} is out of order or beyond the image's {image_size} bytes")
        ranges.append(Range(start, end, (node.get("chksum") or node.get("sha1") or "").strip().lower()))
    return Bmap(image_size, block_size, tuple(ranges), checksum_type)
