"""A small image shaped like pikube's SD image, built without root, mounts or loop devices.

The flash tests and `bench/flash.py` need an image with the real layout (dos
label, p1 FAT32 type c bootable `RASPIFIRM` at 4 MiB, p2 ext4 `RASPIROOT`) but
not the 1.7 GB, 20-minute real one. Each filesystem is made in its own file
(`mkfs.vfat -C`, `mkfs.ext4 -d`), then copied into a sparse disk file with
`dd conv=notrunc`; files go into the FAT with mtools. Optionally a block of
random data in the ext4 (a stand-in for the installed system) and a bmap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
FAT_START_MIB = 4


@dataclass(frozen=True)
class CardImage:
    path: Path
    size: int
    fat_start: int
    fat_size: int
    root_start: int
    root_size: int
    bmap: Path | None


def _run(argv: list[str], *, input: str | None = None, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, input=input, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stdout}{proc.stderr}")


def missing_tools() -> list[str]:
    """The commands `make` needs that are not installed."""
    tools = ("sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy", "dd", "bmaptool")
    return [tool for tool in tools if shutil.which(tool) is None]


def make(path: Path, *, fat_mib: int = 34, root_mib: int = 10, data_mib: int = 0,
         fat_files: dict[str, bytes] | None = None, root_files: dict[str, bytes] | None = None,
         with_bmap: bool = False) -> CardImage:
    """Build the image at `path` (FAT32 needs ≥ 33 MiB); `data_mib` of random data go into the ext4."""
    fat_start, fat_size = FAT_START_MIB * MIB, fat_mib * MIB
    root_start, root_size = fat_start + fat_size, root_mib * MIB
    size = root_start + root_size
    with tempfile.TemporaryDirectory(prefix="pikube-cardimage-") as tmp:
        work = Path(tmp)
        with open(path, "wb") as disk:
            disk.truncate(size)
        table = (f"label: dos\nlabel-id: 0x7069cafe\nstart={FAT_START_MIB}MiB, size={fat_mib}MiB, type=c, bootable\n"
                 f"start={FAT_START_MIB + fat_mib}MiB, size={root_mib}MiB, type=83\n")
        _run(["sfdisk", "--quiet", str(path)], input=table)
        fat = work / "fat.img"
        _run(["mkfs.vfat", "-C", "-F", "32", "-n", "RASPIFIRM", "-s", "1", "-S", "512", "--invariant",
              "-i", "7069cafe", str(fat), str(fat_mib * 1024)])
        for name, data in (fat_files or {"config.txt": b"arm_64bit=1\n", "cmdline.txt": b"root=LABEL=RASPIROOT\n"}
                           ).items():
            local = work / "fatfiles" / name
            local.parent.mkdir(exist_ok=True)
            local.write_bytes(data)
            _run(["mcopy", "-i", str(fat), str(local), f"::/{name}"], env={**os.environ, "MTOOLSRC": "/dev/null"})
        tree = work / "root"
        for name, data in (root_files or {"etc/hostname": b"pikube\n"}).items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(data)
        if data_mib:
            with open(tree / "data.bin", "wb") as blob:
                for _ in range(data_mib):
                    blob.write(os.urandom(MIB))
        root = work / "root.img"
        _run(["mkfs.ext4", "-q", "-F", "-L", "RASPIROOT", "-d", str(tree), str(root), f"{root_mib}M"],
             env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"})
        for part, start in ((fat, fat_start), (root, root_start)):
            _run(["dd", f"if={part}", f"of={path}", "bs=1M", f"seek={start // MIB}", "conv=notrunc,sparse",
                  "status=none"])
    bmap = None
    if with_bmap:
        bmap = path.with_name(path.name + ".bmap")
        _run(["bmaptool", "create", "-o", str(bmap), str(path)])
    return CardImage(path, size, fat_start, fat_size, root_start, root_size, bmap)


def compress(image: Path, kind: str) -> Path:
    """`image` compressed next to it as .zst, .xz or .gz (the original is kept)."""
    argv = {"zst": ["zstd", "-q", "-f", "-k", "-T0"], "xz": ["xz", "-f", "-k", "-T0", "-1"],
            "gz": ["gzip", "-f", "-k", "-1"]}[kind]
    _run([*argv, str(image)])
    return image.with_name(f"{image.name}.{kind}")
