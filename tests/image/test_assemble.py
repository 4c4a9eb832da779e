"""The loop-less assembler on a tiny fake rootfs: partition table, labels, FAT contents, fstab/cmdline/config.txt
agreement, no host keys, and two builds byte-identical. Only Debian's tools (sfdisk, mtools, debugfs) look inside."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pikube.image import assemble
from pikube.image.assemble import Layout
from pikube.image.rootfs import BuildError
from tests.conftest import require

EPOCH = 1764547200
TOOLS = ("mkfs.vfat", "mcopy", "mdir", "mkfs.ext4", "debugfs", "sfdisk", "bmaptool", "zstd", "dumpe2fs")


@pytest.fixture(autouse=True)
def tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    require(not missing, f"image tools missing: {missing} (scripts/install-deps.sh installs them)")


def fake_rootfs(top: Path) -> Path:
    root = top / "root"
    fw = root / "boot/firmware"
    (fw / "overlays").mkdir(parents=True)
    (fw / "config.txt").write_text("[all]\narm_64bit=1\nenable_uart=1\nupstream_kernel=1\n"
                                   "kernel=vmlinuz-6.1.0-x-arm64\n# a comment\ninitramfs initrd.img-6.1.0-x-arm64\n")
    (fw / "cmdline.txt").write_text("console=ttyS1,115200 console=tty0 root=LABEL=RASPIROOT rw rootwait\n")
    (fw / "vmlinuz-6.1.0-x-arm64").write_bytes(random.Random(1).randbytes(300_000))  # same in every tree
    (fw / "initrd.img-6.1.0-x-arm64").write_bytes(b"initrd" * 1000)
    (fw / "bcm2711-rpi-4-b.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + b"4" * 100)
    (fw / "overlays/disable-bt.dtbo").write_bytes(b"dtbo")
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/fstab").write_text("LABEL=RASPIROOT / ext4 rw 0 1\nLABEL=RASPIFIRM /boot/firmware vfat rw 0 2\n")
    (root / "etc/machine-id").write_text("")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
    (root / "usr/bin/hello").chmod(0o755)
    (root / "usr/bin/hi").symlink_to("hello")
    (root / "var/empty").mkdir(parents=True)
    return root


def build(tmp: Path, name: str) -> assemble.Assembled:
    root = fake_rootfs(tmp / name)
    return assemble.assemble(root, tmp / name / "out" / "pikube.img", tmp / name / "work", EPOCH,
                             dtbs=("bcm2711-rpi-4-b.dtb",), zstd_level=3)


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> assemble.Assembled:
    if any(shutil.which(t) is None for t in TOOLS):
        pytest.skip("image tools missing")
    return build(tmp_path_factory.mktemp("img"), "a")


def test_the_partition_table_is_fat32_then_linux_with_a_fixed_disk_id(image: assemble.Assembled) -> None:
    table = json.loads(sh("sfdisk", "--json", str(image.image)))["partitiontable"]
    assert table["label"] == "dos" and table["id"] == "0x70696b75"
    boot, root = table["partitions"]
    assert (boot["start"], boot["size"], boot["type"], boot.get("bootable")) == (8192, 256 * 2048, "c", True)
    assert root["type"] == "83" and root["start"] == 8192 + 256 * 2048
    assert (root["start"] + root["size"]) * 512 == image.image.stat().st_size == image.size


def test_the_fat_holds_the_boot_files_under_its_label(image: assemble.Assembled) -> None:
    fat = f"{image.image}@@4M"
    listing = sh("mdir", "-b", "-i", fat, "-/", "::/")
    names = {line.rsplit("/", 1)[-1] for line in listing.split()}
    assert {"config.txt", "cmdline.txt", "vmlinuz-6.1.0-x-arm64", "initrd.img-6.1.0-x-arm64",
            "bcm2711-rpi-4-b.dtb", "disable-bt.dtbo"} <= names
    assert "RASPIFIRM" in sh("mlabel", "-s", "-i", fat, "::")
    assert "root=LABEL=RASPIROOT" in sh("mtype", "-i", fat, "::/cmdline.txt")


def test_the_root_is_ext4_by_label_with_an_empty_boot_firmware_and_no_host_keys(image: assemble.Assembled) -> None:
    part = f"{image.image}?offset={(4 + 256) * 2**20}"
    head = sh("dumpe2fs", "-h", part)
    assert "Filesystem volume name:   RASPIROOT" in head
    assert Layout().root_uuid in head
    assert sh("debugfs", "-R", "cat /etc/fstab", part).count("LABEL=") == 2
    assert sh("debugfs", "-R", "cat /usr/bin/hello", part).endswith("echo hello\n")
    assert "hello" in sh("debugfs", "-R", "stat /usr/bin/hi", part)  # the symlink, kept as one
    firmware = sh("debugfs", "-R", "ls -p /boot/firmware", part).split()
    assert all(e.split("/")[5] in (".", "..") for e in firmware if e.count("/") >= 6)
    assert "ssh_host" not in sh("debugfs", "-R", "ls /etc/ssh", part)
    assert sh("debugfs", "-R", "cat /etc/machine-id", part).splitlines()[1:] == []
    subprocess.run(["e2fsck", "-fn", part], check=True, capture_output=True)


def test_timestamps_are_the_source_date_epoch(image: assemble.Assembled) -> None:
    part = f"{image.image}?offset={(4 + 256) * 2**20}"
    stat = sh("debugfs", "-R", "stat /usr/bin/hello", part)
    for field in ("ctime", "atime", "mtime"):
        line = next(x for x in stat.splitlines() if x.strip().startswith(field))
        assert f"{EPOCH:x}" in line.lower(), line


def test_two_builds_of_the_same_tree_are_byte_identical(tmp_path: Path, image: assemble.Assembled) -> None:
    again = build(tmp_path, "b")
    assert again.sha256 == image.sha256
    assert set(again.sha256) == {"pikube.img", "pikube.img.bmap", "pikube.img.zst"}


def test_the_bmap_maps_less_than_the_whole_image(image: assemble.Assembled) -> None:
    bmap = ElementTree.parse(image.bmap).getroot()
    total, mapped = int(bmap.findtext("BlocksCount") or 0), int(bmap.findtext("MappedBlocksCount") or 0)
    assert 0 < mapped < total


@pytest.mark.parametrize(("change", "problem"), [
    (lambda r: (r / "etc/ssh/ssh_host_ed25519_key").write_text("k"), "SSH host keys are in the image"),
    (lambda r: (r / "etc/machine-id").write_text("abc\n"), "/etc/machine-id must exist and be empty"),
    (lambda r: (r / "boot/firmware/cmdline.txt").write_text("root=/dev/mmcblk0p2 rw\n"), "cmdline.txt: root="),
    (lambda r: (r / "boot/firmware/initrd.img-6.1.0-x-arm64").unlink(), "initramfs initrd.img-6.1.0-x-arm64 is not"),
    (lambda r: (r / "etc/fstab").write_text("/dev/sda2 / ext4 rw 0 1\n"), "fstab mounts / from /dev/sda2"),
    (lambda r: (r / "boot/firmware/config.txt").write_text("kernel=vmlinuz-6.1.0-x-arm64\n"), "arm_64bit=1"),
    (lambda r: (r / "boot/firmware/bcm2711-rpi-4-b.dtb").unlink(), "bcm2711-rpi-4-b.dtb is not on the boot"),
])
def test_a_tree_that_would_not_boot_is_refused_before_anything_is_written(tmp_path: Path, change: object,
                                                                         problem: str) -> None:
    root = fake_rootfs(tmp_path)
    change(root)  # type: ignore[operator]
    out = tmp_path / "out.img"
    with pytest.raises(BuildError, match="not bootable") as err:
        assemble.assemble(root, out, tmp_path / "work", EPOCH, dtbs=("bcm2711-rpi-4-b.dtb",), zstd_level=None)
    assert problem in str(err.value)
    assert not out.exists()
