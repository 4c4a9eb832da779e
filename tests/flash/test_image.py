"""Reading images before anything is written: the partition table, the bmap, the decompressed size."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from pathlib import Path

import pytest

from pikube.dev import cardimage
from pikube.flash import bmap, mbr, source
from pikube.flash.source import ImageError


def _entry(boot: int, ptype: int, start: int, sectors: int) -> bytes:
    return struct.pack("<B3sB3sII", boot, b"\0\0\0", ptype, b"\0\0\0", start, sectors)


def sector(*entries: bytes, signature: bytes = b"\x55\xaa") -> bytes:
    table = b"".join(entries).ljust(64, b"\0")
    return bytes(440) + struct.pack("<I", 0x7069CAFE) + bytes(2) + table + signature


def test_mbr_of_a_pikube_layout() -> None:
    table = mbr.parse(sector(_entry(0x80, 0x0C, 8192, 69632), _entry(0, 0x83, 77824, 20480)))
    assert table.disk_id == 0x7069CAFE
    fat = table.first_fat()
    assert (fat.number, fat.start, fat.size, fat.bootable) == (1, 4 << 20, 34 << 20, True)
    assert table.end == (77824 + 20480) * 512


@pytest.mark.parametrize("raw,why", [
    (bytes(512), "no partition table (no 55 AA boot signature)"),
    (sector(), "its partition table is empty"),
    (sector(_entry(0, 0xEE, 1, 100)), "GPT partition table"),
    (sector(_entry(0x12, 0x0C, 2048, 100)), "invalid status byte 0x12"),
    (sector(_entry(0, 0x0C, 2048, 4096), _entry(0, 0x83, 4000, 100)), "partitions 1 and 2 overlap"),
    (sector(_entry(0, 0x0C, 0, 4096)), "empty or impossible extent"),
    (b"\x55\xaa", "shorter than one sector"),
])
def test_mbr_refusals(raw: bytes, why: str) -> None:
    with pytest.raises(mbr.PartitionTableError, match=why.replace("(", r"\(").replace(")", r"\)")):
        mbr.parse(raw)


def test_an_image_without_a_fat_partition_is_not_a_pikube_image() -> None:
    with pytest.raises(mbr.PartitionTableError, match="no FAT partition"):
        mbr.parse(sector(_entry(0, 0x83, 2048, 4096))).first_fat()


def test_bmap_of_the_test_image(card_image: cardimage.CardImage) -> None:
    assert card_image.bmap is not None
    parsed = bmap.load(card_image.bmap)
    assert parsed.image_size == card_image.size and parsed.block_size == 4096 and parsed.checksum_type == "sha256"
    with open(card_image.path, "rb") as img:
        for rng in parsed.ranges:
            img.seek(rng.start)
            assert hashlib.sha256(img.read(rng.size)).hexdigest() == rng.checksum
    assert 0 < parsed.mapped_bytes < card_image.size
    assert parsed.ranges[0].start == 0  # the MBR is mapped


def test_a_damaged_bmap_is_refused(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    assert card_image.bmap is not None
    raw = card_image.bmap.read_bytes()
    edited = raw.replace(b"<ImageSize> ", b"<ImageSize> 1", 1)
    with pytest.raises(bmap.BmapError, match="own checksum does not match"):
        bmap.parse(edited)
    with pytest.raises(bmap.BmapError, match="not valid XML"):
        bmap.parse(raw[:200])


def test_bmap_found_beside_compressed_images(tmp_path: Path) -> None:
    (tmp_path / "p.img.bmap").write_text("x")
    for name in ("p.img", "p.img.zst", "p.img.xz", "p.img.gz"):
        assert bmap.beside(tmp_path / name) == tmp_path / "p.img.bmap"
    assert bmap.beside(tmp_path / "q.img") is None


@pytest.mark.parametrize("suffix", ["", ".zst", ".xz", ".gz"])
def test_inspect_knows_the_size_and_table_of_every_format(card_image: cardimage.CardImage, suffix: str) -> None:
    image = source.inspect(card_image.path.with_name("p.img" + suffix))
    assert image.size == card_image.size and image.size_exact
    assert image.compression == suffix.lstrip(".")
    assert image.table.first_fat().start == card_image.fat_start
    assert image.bmap is not None and image.to_write == image.bmap.mapped_bytes


@pytest.mark.parametrize("suffix", ["", ".zst", ".xz", ".gz"])
def test_streams_give_back_the_image(card_image: cardimage.CardImage, suffix: str) -> None:
    want = hashlib.sha256(card_image.path.read_bytes()).hexdigest()
    got = hashlib.sha256()
    with source.open_stream(card_image.path.with_name("p.img" + suffix), suffix.lstrip(".")) as stream:
        stream.skip(0)
        while data := stream.read(1 << 20):
            got.update(data)
    assert got.hexdigest() == want


def test_raw_stream_reads_holes_as_zeros_without_reading_them(card_image: cardimage.CardImage) -> None:
    """The 4 MiB gap before the FAT is a hole in the built image: it comes back as zeros, in one piece."""
    with source.open_stream(card_image.path, "") as stream:
        stream.skip(1 << 20)
        gap = stream.read(3 << 20)
        assert gap == bytes(3 << 20)
        assert stream.read(512)[510:512] == b"\x55\xaa"  # the FAT's boot sector right after the gap


def test_missing_image() -> None:
    with pytest.raises(ImageError, match=r"^the image /nonexistent/p.img does not exist\.$"):
        source.inspect(Path("/nonexistent/p.img"))


def test_image_without_a_partition_table(tmp_path: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 16))
    with pytest.raises(ImageError, match=r"junk\.img is not a pikube image: its first sector has no partition"):
        source.inspect(junk)


def test_truncated_image_is_refused(image_copy: Path) -> None:
    os.truncate(image_copy, 20 << 20)
    with pytest.raises(ImageError, match=r"is truncated: its partitions end at byte \d+ but it holds only 20971520"):
        source.inspect(image_copy)


def test_a_bmap_of_another_image_is_refused(card_image: cardimage.CardImage, image_copy: Path) -> None:
    assert card_image.bmap is not None
    with open(image_copy, "ab") as grow:
        grow.truncate(card_image.size + (1 << 20))
    shutil.copyfile(card_image.bmap, image_copy.with_name("copy.img.bmap"))
    with pytest.raises(ImageError, match="it belongs to another image"):
        source.inspect(image_copy)
    assert source.inspect(image_copy, use_bmap=False).bmap is None


def test_a_damaged_compressed_image_is_refused(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    broken = tmp_path / "broken.img.xz"
    raw = card_image.path.with_name("p.img.xz").read_bytes()
    broken.write_bytes(raw[:12] + bytes(64) + raw[76:])
    with pytest.raises(ImageError, match=r"damaged or not a \.xz file"):
        source.inspect(broken)
