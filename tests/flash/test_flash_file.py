"""Flashing to a file standing for a card: every image format, verified, preseeded, and damage detected."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from core import boardconfig
from core.boardconfig import BoardConfig, Wifi
from pikube import flash
from pikube.dev import cardimage
from pikube.flash import fat, flasher, seed, source
from pikube.flash.flasher import Refused
from pikube.flash.seed import PreseedError
from pikube.flash.source import ImageError
from pikube.flash.target import TargetError
from pikube.flash.verify import VerifyError
from tests.flash.conftest import TOKEN


def sha(path: Path, length: int | None = None) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read(length) if length is not None else file.read()).hexdigest()


def partition(path: Path, start: int, size: int, out: Path) -> Path:
    with open(path, "rb") as src:
        src.seek(start)
        out.write_bytes(src.read(size))
    return out


def check_filesystems(card: Path, image: cardimage.CardImage, tmp: Path) -> None:
    """p2 passes e2fsck -fn, p1 passes fsck.fat -n and holds the image's files (read with mtools)."""
    root = partition(card, image.root_start, image.root_size, tmp / "p2.ext4")
    proc = subprocess.run(["e2fsck", "-fn", str(root)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    boot = partition(card, image.fat_start, image.fat_size, tmp / "p1.vfat")
    proc = subprocess.run(["fsck.fat", "-n", str(boot)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fat.read_file(card, image.fat_start, "config.txt") == b"arm_64bit=1\n"


@pytest.mark.parametrize("use_bmap", [True, False], ids=["bmap", "no-bmap"])
@pytest.mark.parametrize("suffix", ["", ".zst", ".xz", ".gz"])
def test_every_format_with_and_without_bmap(card_image: cardimage.CardImage, tmp_path: Path, suffix: str,
                                            use_bmap: bool) -> None:
    card = tmp_path / "card.bin"
    plan = flasher.plan(card_image.path.with_name("p.img" + suffix), card, use_bmap=use_bmap)
    report = flasher.run(plan)
    assert card.stat().st_size == card_image.size
    assert sha(card) == sha(card_image.path)
    assert report.verified is not None
    mapped = plan.image.bmap.mapped_bytes if plan.image.bmap else card_image.size
    assert report.verified.bytes == mapped == report.written.covered
    assert report.written.skipped == (card_image.size - mapped if use_bmap else 0)
    assert 0 < report.written.written < card_image.size
    # Zeros are never written to a file: it stays sparse (the 4 MiB gap and free space are holes).
    assert card.stat().st_blocks * 512 <= report.written.written + (1 << 20)
    check_filesystems(card, card_image, tmp_path)


def test_a_file_standing_for_a_used_card_is_cleared_beyond_the_image(card_image: cardimage.CardImage,
                                                                     tmp_path: Path) -> None:
    card = tmp_path / "used-card.bin"
    card.write_bytes(os.urandom(64 << 20))
    flasher.run(flasher.plan(card_image.path, card, use_bmap=False))
    assert card.stat().st_size == 64 << 20
    assert sha(card, card_image.size) == sha(card_image.path)
    with open(card, "rb") as file:
        file.seek(card_image.size)
        assert file.read() == bytes((64 << 20) - card_image.size)


@pytest.mark.parametrize("suffix", ["", ".zst"])
def test_a_byte_corrupted_between_write_and_verify_is_found(card_image: cardimage.CardImage, tmp_path: Path,
                                                            suffix: str) -> None:
    card = tmp_path / "card.bin"
    bad_at = card_image.fat_start + 3  # the FAT boot sector's OEM name: mapped, never zero

    def corrupt(path: Path) -> None:
        with open(path, "r+b") as file:
            file.seek(bad_at)
            byte = file.read(1)
            file.seek(bad_at)
            file.write(bytes([byte[0] ^ 0xFF]))
            file.flush()
            os.fsync(file.fileno())

    plan = flasher.plan(card_image.path.with_name("p.img" + suffix), card)
    with pytest.raises(VerifyError) as info:
        flasher.run(plan, config=b"hostname: pi-1\n", before_verify=corrupt)
    assert info.value.offset == bad_at and info.value.bad_chunks == 1
    assert f"differs from the image at byte {bad_at} (0x{bad_at:x})" in str(info.value)
    assert "NOT ready" in str(info.value)
    assert fat.read_file(card, card_image.fat_start, seed.FILENAME) is None  # not preseeded either


def test_the_hook_runs_once_between_write_and_verify(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    """A hook that changes nothing: the write verifies, so only the corruption above fails it."""
    card = tmp_path / "card.bin"
    seen: list[tuple[Path, bytes]] = []
    report = flasher.run(flasher.plan(card_image.path, card),
                         before_verify=lambda path: seen.append((path, path.read_bytes()[510:512])))
    assert seen == [(card, b"\x55\xaa")]  # called once, after the MBR was on the card
    assert report.verified is not None and report.verified.chunks >= 2


def test_an_image_that_does_not_match_its_bmap_is_caught_while_writing(card_image: cardimage.CardImage,
                                                                       image_copy: Path, tmp_path: Path) -> None:
    assert card_image.bmap is not None
    shutil.copyfile(card_image.bmap, image_copy.with_name("copy.img.bmap"))
    with open(image_copy, "r+b") as file:
        file.seek(card_image.fat_start + 3)
        file.write(b"X")
    with pytest.raises(ImageError, match=r"do not match the checksum in .*copy\.img\.bmap"):
        flasher.run(flasher.plan(image_copy, tmp_path / "card.bin"))


def test_flash_with_settings_writes_pikube_yaml(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    card = tmp_path / "card.bin"
    cfg = BoardConfig(hostname="pi-2", role="worker", master="192.168.1.10", token=TOKEN,
                      wifi=Wifi("Home", "correct horse", "GB"))
    text = boardconfig.to_yaml(cfg).encode()
    report = flasher.run(flasher.plan(card_image.path.with_name("p.img.zst"), card), config=text)
    assert report.seeded is not None and not report.seeded.replaced
    on_card = fat.read_file(card, card_image.fat_start, seed.FILENAME)
    assert on_card == text and boardconfig.parse_text(on_card.decode()) == cfg
    check_filesystems(card, card_image, tmp_path)


def test_preseed_changes_only_the_fat_file(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    card = tmp_path / "card.bin"
    flasher.run(flasher.plan(card_image.path, card))
    before = card.read_bytes()
    fat_end = card_image.fat_start + card_image.fat_size
    first = flash.preseed(card, BoardConfig(hostname="pi-7", ssh_authorized_keys=()))
    assert not first.replaced and first.partition.start == card_image.fat_start
    second = flash.preseed(card, BoardConfig(hostname="pi-8", timezone="UTC"))
    assert second.replaced
    after = card.read_bytes()
    assert len(after) == len(before)
    assert after[:card_image.fat_start] == before[:card_image.fat_start]  # MBR and gap
    assert after[fat_end:] == before[fat_end:]  # the whole ext4
    assert after != before
    for name in ("config.txt", "cmdline.txt"):
        assert fat.read_file(card, card_image.fat_start, name) == fat.read_file(card_image.path, card_image.fat_start,
                                                                                 name)
    assert sorted(fat.names(card, card_image.fat_start)) == ["cmdline.txt", "config.txt", "pikube.yaml"]
    on_card = fat.read_file(card, card_image.fat_start, seed.FILENAME)
    assert on_card is not None and boardconfig.parse_text(on_card.decode()) == BoardConfig(hostname="pi-8",
                                                                                            timezone="UTC")
    check_filesystems(card, card_image, tmp_path)


def test_preseed_refuses_what_it_cannot_edit(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    with pytest.raises(PreseedError, match="is compressed: preseed the card after flashing it"):
        seed.preseed_bytes(card_image.path.with_name("p.img.zst"), b"hostname: x\n")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(4096))
    with pytest.raises(PreseedError, match="is not a pikube image or card: its first sector has no partition"):
        seed.preseed_bytes(junk, b"hostname: x\n")
    short = tmp_path / "short.img"
    short.write_bytes(card_image.path.read_bytes()[:8 << 20])
    with pytest.raises(PreseedError, match="is truncated: its FAT partition ends at byte"):
        seed.preseed_bytes(short, b"hostname: x\n")


def test_preseed_refuses_invalid_settings_before_writing(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    card = tmp_path / "card.bin"
    flasher.run(flasher.plan(card_image.path, card))
    before = sha(card)
    with pytest.raises(boardconfig.ConfigError, match=r"wifi\.passphrase: a WPA passphrase has 8 to 63 characters"):
        flash.preseed(card, BoardConfig(wifi=Wifi("Home", "x" * 80, "GB")))
    assert sha(card) == before


# -- refused before anything is written ----------------------------------------------------------


def test_bad_images_are_refused_before_the_target_is_created(tmp_path: Path) -> None:
    card = tmp_path / "card.bin"
    with pytest.raises(ImageError, match="does not exist"):
        flasher.plan(tmp_path / "missing.img.xz", card)
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1 << 20))
    with pytest.raises(ImageError, match="is not a pikube image"):
        flasher.plan(junk, card)
    assert not card.exists()


def test_the_image_itself_is_not_a_target(image_copy: Path) -> None:
    before = sha(image_copy)
    with pytest.raises(Refused, match="is the image itself"):
        flasher.plan(image_copy, image_copy)
    assert sha(image_copy) == before


def test_a_target_in_a_missing_directory(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"does not exist, so .* cannot be created"):
        flasher.plan(card_image.path, tmp_path / "no" / "card.bin")


def test_not_a_file_nor_a_block_device(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="neither a block device nor a regular file"):
        flasher.plan(card_image.path, tmp_path)


def test_inspect_then_stream_length_mismatch_is_damage(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    """A .gz whose recorded size is wrong (a concatenated or cut file) fails the write, never 'ready'."""
    gz = tmp_path / "p.img.gz"
    data = card_image.path.with_name("p.img.gz").read_bytes()
    gz.write_bytes(data[:-4] + (card_image.size + 4096).to_bytes(4, "little"))
    image = source.inspect(gz, use_bmap=False)
    assert image.size == card_image.size + 4096
    with pytest.raises(ImageError, match="damaged"):
        flasher.run(flasher.Plan(image, flasher.target.describe(tmp_path / "card.bin"), None))


def test_no_verify_hashes_nothing_and_still_writes_the_image(card_image: cardimage.CardImage, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from pikube.cli.main import run

    card = tmp_path / "card.bin"
    report = flasher.run(flasher.plan(card_image.path.with_name("p.img.gz"), card), check=False)
    assert report.verified is None and report.written.chunks == []
    assert sha(card) == sha(card_image.path)
    assert run(["flash", str(card_image.path), str(tmp_path / "other.bin"), "--no-verify"]) == 0
    assert "Not verified (--no-verify)." in capsys.readouterr().out
