"""Flashing a loop device, the closest thing to a card this machine has: the kernel's block layer, O_EXCL,
BLKZEROOUT, partitions appearing with partx, and the guard's live view (lsblk) of a mounted partition."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import boardconfig
from core.boardconfig import BoardConfig
from pikube.cli.main import run
from pikube.dev import cardimage
from pikube.flash import fat, flasher, seed
from pikube.flash.flasher import Refused
from tests.conftest import require
from tests.flash.conftest import TOKEN

pytestmark = pytest.mark.integration


def _sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


@contextlib.contextmanager
def loop_device(backing: Path) -> Iterator[Path]:
    """`backing` attached to a free loop device, partitions dropped and detached afterwards, pass or fail."""
    require(os.geteuid() == 0, "needs root for loop devices")
    require(all(shutil.which(t) for t in ("losetup", "partx", "lsblk")), "needs util-linux (losetup, partx)")
    proc = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=False)
    require(proc.returncode == 0, f"needs a free loop device ({proc.stderr.strip()})")
    dev = Path(proc.stdout.strip())
    try:
        yield dev
    finally:
        subprocess.run(["partx", "-d", str(dev)], capture_output=True, check=False)
        subprocess.run(["losetup", "-d", str(dev)], capture_output=True, check=False)
        left = subprocess.run(["losetup", "-j", str(backing)], capture_output=True, text=True, check=False).stdout
        assert left.strip() == "", f"loop device left attached: {left}"


def garbage_file(path: Path, size: int) -> Path:
    """A 'used card': random bytes everywhere, so skipped or unzeroed regions would show."""
    with open(path, "wb") as file:
        for _ in range(size >> 20):
            file.write(os.urandom(1 << 20))
    return path


def partitions(dev: Path) -> tuple[Path, Path]:
    _sh("partx", "-a", str(dev))
    p1, p2 = Path(f"{dev}p1"), Path(f"{dev}p2")
    assert p1.exists() and p2.exists(), sorted(os.listdir("/dev"))
    return p1, p2


def sha_of(path: Path, length: int) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read(length)).hexdigest()


@pytest.mark.parametrize("use_bmap", [False, True], ids=["no-bmap", "bmap"])
def test_flash_a_used_card_on_a_loop_device(card_image: cardimage.CardImage, tmp_path: Path, use_bmap: bool) -> None:
    backing = garbage_file(tmp_path / "card.bin", 64 << 20)
    cfg = BoardConfig(hostname="pi-3", role="worker", master="192.168.1.10", token=TOKEN)
    claims: list[int] = []

    def try_to_claim(path: Path) -> None:
        """What mount (or another flasher) does first: claim the device exclusively."""
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_EXCL))
            claims.append(0)
        except OSError as exc:
            claims.append(exc.errno or 0)

    with loop_device(backing) as dev:
        plan = flasher.plan(card_image.path.with_name("p.img.zst"), dev, use_bmap=use_bmap, allow_loop=True)
        assert plan.target.is_block and plan.target.size == 64 << 20
        report = flasher.run(plan, config=boardconfig.to_yaml(cfg).encode(), before_verify=try_to_claim)
        assert claims == [errno.EBUSY]  # between write and verify the card is still claimed: no automount
        assert report.verified is not None and report.seeded is not None
        fd = os.open(dev, os.O_RDONLY | os.O_EXCL)  # and released once pikube.yaml is checked
        os.close(fd)
        if not use_bmap:
            # Every byte of the image is on the card, zeros included (cleared with BLKZEROOUT or written).
            assert report.written.zeroed > 0 and report.written.skipped == 0
            with open(dev, "rb") as card, open(card_image.path, "rb") as image:
                card_bytes, image_bytes = card.read(card_image.size), image.read()
            differ = [i for i in range(0, card_image.size, 1 << 20)
                      if card_bytes[i:i + (1 << 20)] != image_bytes[i:i + (1 << 20)]]
            fat_mib = range(card_image.fat_start >> 20, (card_image.fat_start + card_image.fat_size) >> 20)
            assert all(mib in fat_mib for mib in (i >> 20 for i in differ))  # only where pikube.yaml went
        else:
            assert report.written.skipped == card_image.size - plan.image.to_write
        p1, p2 = partitions(dev)
        proc = subprocess.run(["e2fsck", "-fn", str(p2)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout
        proc = subprocess.run(["fsck.fat", "-n", str(p1)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout
        names = _sh("mdir", "-b", "-i", str(p1), "::/").split()
        assert sorted(names) == ["::/cmdline.txt", "::/config.txt", "::/pikube.yaml"]
        on_card = fat.read_file(p1, 0, seed.FILENAME)
        assert on_card is not None and boardconfig.parse_text(on_card.decode()) == cfg


def test_preseed_a_flashed_loop_device_from_the_cli(card_image: cardimage.CardImage, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    backing = tmp_path / "card.bin"
    backing.write_bytes(b"")
    os.truncate(backing, 64 << 20)
    with loop_device(backing) as dev:
        flasher.run(flasher.plan(card_image.path, dev, allow_loop=True))
        before = sha_of(dev, card_image.fat_start)
        assert run(["preseed", str(dev), "--hostname", "pi-9"]) == 1
        assert "is a loop device; pass --allow-loop" in capsys.readouterr().err
        held: list[int] = []
        real_write = fat.write_file

        def write_and_try_to_claim(path: Path, offset: int, name: str, data: bytes) -> None:
            try:
                os.close(os.open(path, os.O_RDONLY | os.O_EXCL))
                held.append(0)
            except OSError as exc:
                held.append(exc.errno or 0)
            real_write(path, offset, name, data)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fat, "write_file", write_and_try_to_claim)
            assert run(["preseed", str(dev), "--allow-loop", "--hostname", "pi-9", "--timezone", "UTC"]) == 0
        assert held == [errno.EBUSY]
        assert f"Wrote pikube.yaml on {dev} (read back and checked): hostname=pi-9, timezone=UTC." in \
            capsys.readouterr().out
        on_card = fat.read_file(dev, card_image.fat_start, seed.FILENAME)
        assert on_card is not None and boardconfig.parse_text(on_card.decode()) == BoardConfig(hostname="pi-9",
                                                                                                timezone="UTC")
        assert sha_of(dev, card_image.fat_start) == before


def test_a_card_smaller_than_the_image_is_refused_before_writing(card_image: cardimage.CardImage,
                                                                 tmp_path: Path) -> None:
    backing = garbage_file(tmp_path / "small.bin", 16 << 20)
    before = sha_of(backing, 16 << 20)
    with loop_device(backing) as dev, pytest.raises(
            Refused, match=r"holds 16\.8 MB \(16777216 bytes\) but the image needs 50\.3 MB"):
        flasher.plan(card_image.path.with_name("p.img.xz"), dev, allow_loop=True)
    assert sha_of(backing, 16 << 20) == before


def test_a_card_with_a_mounted_partition_is_refused_and_named(card_image: cardimage.CardImage,
                                                              tmp_path: Path) -> None:
    backing = tmp_path / "card.bin"
    shutil.copyfile(card_image.path, backing)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with loop_device(backing) as dev:
        _p1, p2 = partitions(dev)
        _sh("mount", "-o", "ro", str(p2), str(mnt))
        try:
            with pytest.raises(Refused) as info:
                flasher.plan(card_image.path, dev, allow_loop=True)
            assert f"{dev} is in use: {p2} on {mnt} is mounted; unmount it first (`sudo umount {p2}`" in \
                str(info.value)
        finally:
            _sh("umount", str(mnt))


def test_root_is_needed_for_a_block_device_and_said_in_one_sentence(card_image: cardimage.CardImage,
                                                                     tmp_path: Path) -> None:
    backing = tmp_path / "card.bin"
    backing.write_bytes(b"")
    os.truncate(backing, 64 << 20)
    with loop_device(backing) as dev, pytest.raises(Refused) as info:
        flasher.plan(card_image.path, dev, allow_loop=True, euid=1000)
    assert str(info.value) == f"writing to {dev} needs root (it is a block device); run the same command with sudo."
