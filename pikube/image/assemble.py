"""A partitioned disk image from a staged root tree, with no loop device, no mount and no root needed.

CI machines (and many laptops' containers) have neither a vfat driver nor
device-mapper, so the image is put together as Debian's own tools allow on plain
files: the boot partition is a FAT32 file system made by `mkfs.vfat` and filled
with mtools, the root an ext4 made by `mkfs.ext4 -d` straight from the tree, the
MBR written by `sfdisk` into the image file, and both file systems copied in at
their offsets (holes stay holes). Then `bmaptool create` and zstd.

Reproducible: the same tree gives the same bytes. Every timestamp is clamped to
SOURCE_DATE_EPOCH (mke2fs copies a file's atime and ctime from the host, so a
debugfs pass sets them afterwards), volume ids, UUIDs and the ext4 hash seed are
fixed, and files go into the FAT in sorted order.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pikube.image.rootfs import BuildError

MIB = 1 << 20
TOOLS = {"mkfs.vfat": "dosfstools", "mcopy": "mtools", "mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs",
         "sfdisk": "fdisk", "bmaptool": "bmap-tools", "zstd": "zstd"}


@dataclass(frozen=True)
class Layout:
    """Where things go on the card. The labels are what fstab, cmdline.txt and raspi-firmware name."""
    boot_label: str = "RASPIFIRM"
    root_label: str = "RASPIROOT"
    boot_start_mib: int = 4
    boot_mib: int = 256
    disk_id: int = 0x70696B75  # "piku"
    fat_serial: str = "70696B75"
    root_uuid: str = "70696b75-6265-4000-8000-726f6f746673"
    root_slack: float = 0.25  # free space in the root file system, on top of what the tree needs...
    root_extra_mib: int = 256  # ...and this; first boot grows it to the card anyway


@dataclass(frozen=True)
class Assembled:
    image: Path
    bmap: Path
    zst: Path | None
    size: int
    sha256: dict[str, str]


def boot_problems(root: Path, layout: Layout, dtbs: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with the staged tree's boot files, fstab and first-boot state (empty when all agree)."""
    problems: list[str] = []
    fw = root / "boot" / "firmware"
    cmdline = (fw / "cmdline.txt").read_text() if (fw / "cmdline.txt").is_file() else ""
    if "\n" in cmdline.rstrip("\n"):
        problems.append("cmdline.txt must be a single line")
    roots = re.findall(r"(?:^|\s)root=(\S+)", cmdline)
    if roots != [f"LABEL={layout.root_label}"]:
        problems.append(f"cmdline.txt: root= is {roots or 'missing'}, not LABEL={layout.root_label}")
    config = (fw / "config.txt").read_text() if (fw / "config.txt").is_file() else ""
    settings = dict(re.findall(r"^\s*([a-z_0-9]+)\s*[= ]\s*(\S+)", config, re.M))
    if settings.get("arm_64bit") != "1":
        problems.append("config.txt: arm_64bit=1 is missing (the firmware would start a 32-bit kernel)")
    for key in ("kernel", "initramfs"):
        name = settings.get(key)
        if not name:
            problems.append(f"config.txt names no {key}")
        elif not (fw / name).is_file():
            problems.append(f"config.txt: {key} {name} is not on the boot partition")
    for dtb in dtbs:
        if not (fw / dtb).is_file():
            problems.append(f"the device tree {dtb} is not on the boot partition")
    fstab = (root / "etc" / "fstab").read_text() if (root / "etc" / "fstab").is_file() else ""
    mounts = {f[1]: f[0] for line in fstab.splitlines() if len(f := line.split()) >= 2 and not f[0].startswith("#")}
    if mounts.get("/") != f"LABEL={layout.root_label}":
        problems.append(f"fstab mounts / from {mounts.get('/')}, not LABEL={layout.root_label}")
    if mounts.get("/boot/firmware") != f"LABEL={layout.boot_label}":
        problems.append(f"fstab mounts /boot/firmware from {mounts.get('/boot/firmware')}, "
                        f"not LABEL={layout.boot_label}")
    keys = sorted(p.name for p in (root / "etc" / "ssh").glob("ssh_host_*"))
    if keys:
        problems.append(f"SSH host keys are in the image ({', '.join(keys)}): every board would share them")
    machine_id = root / "etc" / "machine-id"
    if not machine_id.is_file() or machine_id.read_text().strip():
        problems.append("/etc/machine-id must exist and be empty (systemd makes one on first boot)")
    return problems


def _walk(top: Path) -> Iterator[Path]:
    """Every path under `top` (not `top`), depth-first in sorted order, not following symlinks."""
    for entry in sorted(os.scandir(top), key=lambda e: e.name):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)


def clamp_times(top: Path, epoch: int) -> None:
    """Set every mtime later than `epoch` (and `top`'s own) to `epoch`, as SOURCE_DATE_EPOCH asks."""
    for path in [top, *_walk(top)]:
        st = path.lstat()
        if st.st_mtime > epoch or st.st_atime != epoch:
            os.utime(path, (epoch, min(int(st.st_mtime), epoch)), follow_symlinks=False)


def run(cmd: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    proc = subprocess.run(cmd, input=stdin, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{cmd[0]} failed (exit {proc.returncode}): {proc.stdout.strip()[-2000:]}")
    return proc.stdout


def make_fat(boot: Path, out: Path, layout: Layout, epoch: int) -> None:
    """A FAT32 file system of `layout.boot_mib` holding the tree `boot`, files added in sorted order."""
    out.unlink(missing_ok=True)
    run(["mkfs.vfat", "-C", "--invariant", "-F", "32", "-n", layout.boot_label, "-i", layout.fat_serial,
         "-S", "512", str(out), str(layout.boot_mib * 1024)])
    clamp_times(boot, epoch)
    env = {"MTOOLS_SKIP_CHECK": "1", "TZ": "UTC", "SOURCE_DATE_EPOCH": str(epoch)}
    for path in _walk(boot):
        rel = "::/" + path.relative_to(boot).as_posix()
        if path.is_symlink():
            raise BuildError(f"{path}: a symlink cannot go on the FAT boot partition")
        if path.is_dir():
            run(["mmd", "-i", str(out), rel], env)
        else:
            run(["mcopy", "-i", str(out), "-p", "-m", "-Q", str(path), rel], env)
    run(["fsck.vfat", "-n", str(out)])


def tree_bytes(top: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in _walk(top))


def make_ext4(root: Path, out: Path, layout: Layout, epoch: int) -> None:
    """An ext4 holding the tree `root`, every inode's times set to `epoch` or before."""
    size_mib = int(tree_bytes(root) * (1 + layout.root_slack) / MIB) + layout.root_extra_mib
    out.unlink(missing_ok=True)
    clamp_times(root, epoch)
    env = {"E2FSPROGS_FAKE_TIME": str(epoch), "SOURCE_DATE_EPOCH": str(epoch)}
    run(["mkfs.ext4", "-q", "-F", "-L", layout.root_label, "-U", layout.root_uuid, "-b", "4096",
         "-E", f"hash_seed={layout.root_uuid},root_owner=0:0", "-O", "^metadata_csum_seed",
         "-d", str(root), str(out), f"{size_mib}M"], env)
    # mke2fs took each inode's atime and ctime from the host's stat(): set them to the epoch.
    commands = [f"sif / {field} @{epoch}" for field in ("atime", "ctime", "mtime")]
    for path in _walk(root):
        rel = "/" + path.relative_to(root).as_posix()
        if '"' in rel or "\n" in rel:
            raise BuildError(f"{path}: a file name debugfs cannot quote")
        commands += [f'sif "{rel}" atime @{epoch}', f'sif "{rel}" ctime @{epoch}']
    script = out.with_suffix(".debugfs")
    script.write_text("\n".join(commands) + "\n")
    run(["debugfs", "-w", "-f", str(script), str(out)], env)
    script.unlink()
    run(["e2fsck", "-fn", str(out)], env)


def sparse_copy(src: Path, dst: Path, offset: int) -> None:
    """Copy `src` into `dst` at `offset`, leaving all-zero MiB blocks as holes."""
    zero = bytes(MIB)
    with src.open("rb") as fin, dst.open("r+b") as fout:
        pos = offset
        while block := fin.read(MIB):
            if block != zero[:len(block)]:
                fout.seek(pos)
                fout.write(block)
            pos += len(block)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 * MIB):
            h.update(block)
    return h.hexdigest()


def assemble(root: Path, out: Path, work: Path, epoch: int, layout: Layout = Layout(),
             dtbs: tuple[str, ...] = (), zstd_level: int | None = 12,
             step: Callable[[str], None] = lambda _s: None) -> Assembled:
    """The image `out` (+ .bmap, + .zst unless zstd_level is None) from the staged tree `root`.

    The tree's boot/firmware/ becomes the FAT partition (and is emptied in the tree); the rest the root.
    """
    problems = boot_problems(root, layout, dtbs)
    if problems:
        raise BuildError("the staged tree is not bootable:\n  " + "\n  ".join(problems))
    work.mkdir(parents=True, exist_ok=True)
    boot = work / "boot"
    shutil.rmtree(boot, ignore_errors=True)
    shutil.move(root / "boot" / "firmware", boot)
    (root / "boot" / "firmware").mkdir()
    os.utime(root / "boot" / "firmware", (epoch, epoch))
    try:
        step("boot partition (FAT32, mtools)")
        make_fat(boot, work / "boot.vfat", layout, epoch)
        step("root partition (ext4, mkfs.ext4 -d)")
        make_ext4(root, work / "root.ext4", layout, epoch)
    finally:  # the tree is whole again, whatever happened
        (root / "boot" / "firmware").rmdir()
        shutil.move(boot, root / "boot" / "firmware")
    step("partition table and image")
    boot_start = layout.boot_start_mib * MIB
    root_start = boot_start + layout.boot_mib * MIB
    root_size = (work / "root.ext4").stat().st_size
    total = root_start + root_size
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with out.open("wb") as f:
        f.truncate(total)
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", str(out)], stdin=(
        f"label: dos\nlabel-id: 0x{layout.disk_id:08x}\nunit: sectors\n"
        f"start={boot_start // 512}, size={layout.boot_mib * MIB // 512}, type=c, bootable\n"
        f"start={root_start // 512}, size={root_size // 512}, type=83\n"))
    sparse_copy(work / "boot.vfat", out, boot_start)
    sparse_copy(work / "root.ext4", out, root_start)
    (work / "boot.vfat").unlink()
    (work / "root.ext4").unlink()
    bmap = out.with_name(out.name + ".bmap")
    step("block map (bmaptool create)")
    run(["bmaptool", "-q", "create", "-o", str(bmap), str(out)])
    zst: Path | None = None
    if zstd_level is not None:
        step(f"compressing (zstd -{zstd_level})")
        zst = out.with_name(out.name + ".zst")
        run(["zstd", "-q", "-f", f"-{zstd_level}", "-T2", str(out), "-o", str(zst)])
    sums = {p.name: sha256(p) for p in (out, bmap, zst) if p is not None}
    return Assembled(image=out, bmap=bmap, zst=zst, size=total, sha256=sums)
