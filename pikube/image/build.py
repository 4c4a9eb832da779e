"""`pikube image build`: the cached rootfs, pikube's steps on a copy of it, then the disk image and its manifest.

The order: (1) the Debian rootfs tarball from the cache, built when its inputs
changed (rootfs.py); (2) a fresh copy of it, unpacked in a work folder; (3) the
board's Python wheels (wheels.py); (4) image-builder/steps/*.sh in name order,
each with ROOTFS, IMAGE_BUILDER, WHEELS, SOURCE_DATE_EPOCH and BOARD set (aarch64
programs in the chroot run under qemu-user); (5) the loop-less assembly
(assemble.py) into IMAGE, IMAGE.bmap, IMAGE.zst; (6) IMAGE.manifest.json: the
board, pikube's version, the rootfs key, every Debian and Python package with its
version, and the sha256 of each output. Steps 2-6 take a minute or two; only a
change under image-builder/rootfs/ costs the emulated rootfs again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core import __version__
from pikube.image import assemble, wheels
from pikube.image.progress import Progress
from pikube.image.recipe import Recipe
from pikube.image.rootfs import Binfmt, BuildError, ensure, missing_tools, stream

VENV = "/opt/pikube/venv"


@dataclass(frozen=True)
class Options:
    board: str
    out: Path
    cache: Path
    source: Path  # pikube's source tree (its pyproject.toml and packages)
    zstd_level: int | None = 12


@dataclass(frozen=True)
class Result:
    assembled: assemble.Assembled
    manifest: Path
    rootfs_built: bool


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pikube"


def dpkg_packages(root: Path) -> dict[str, str]:
    """Installed Debian packages and versions, from the tree's dpkg status file."""
    packages: dict[str, str] = {}
    for stanza in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            arch = fields.get("Architecture", "")
            packages[fields["Package"] + ("" if arch in ("all", "arm64", "") else f":{arch}")] = fields["Version"]
    return dict(sorted(packages.items()))


def python_packages(root: Path) -> dict[str, str]:
    site = next((root / VENV.lstrip("/") / "lib").glob("python3*/site-packages"), None)
    found: dict[str, str] = {}
    for info in sorted(site.glob("*.dist-info")) if site else []:
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        found[name] = version
    return found


def unpack(tar: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    proc = subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tar),
                           "-C", str(dest)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise BuildError(f"unpacking {tar} failed: {proc.stdout.strip()[-1000:]}")


def run_steps(recipe: Recipe, root: Path, wheel_dir: Path, board: str, progress: Progress) -> None:
    env = {**os.environ, "ROOTFS": str(root), "IMAGE_BUILDER": str(recipe.root), "WHEELS": str(wheel_dir),
           "SOURCE_DATE_EPOCH": str(recipe.rootfs.source_date_epoch), "BOARD": board, "LC_ALL": "C.UTF-8"}
    with Binfmt():
        for script in recipe.steps:
            progress.step(f"step {script.name}")
            stream(["sh", str(script)], env, progress.detail, f"step {script.name}")


def build(recipe: Recipe, opts: Options, progress: Progress) -> Result:
    board = recipe.boards.get(opts.board)
    if board is None:
        raise BuildError(f"no board {opts.board!r}; the boards are {', '.join(sorted(recipe.boards))}")
    if not board.supported:
        raise BuildError(f"{board.model} is not supported by this image: {board.note}")
    missing = missing_tools({**assemble.TOOLS, "qemu-aarch64-static": "qemu-user-static", "tar": "tar"})
    if missing:
        raise BuildError(f"the build needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        raise BuildError("pikube image build runs steps in a chroot: run it as root")
    epoch = recipe.rootfs.source_date_epoch
    progress.step("rootfs (Debian, cached by its inputs)")
    tar, built = ensure(recipe.rootfs, opts.cache, progress.log, detail=progress.detail)
    (opts.cache / "work").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=opts.cache / "work") as tmp:
        work = Path(tmp)
        progress.step(f"unpacking {tar.name}")
        unpack(tar, work / "root")
        progress.step("Python wheels (pikube + aarch64 dependencies)")
        wheel_dir = work / "wheels"
        wheels.collect(opts.source, wheels.load_target(recipe.root / "python.toml"), recipe.board_excludes,
                       wheel_dir)
        run_steps(recipe, work / "root", wheel_dir, board.name, progress)
        progress.step("assembling the image")
        packages, pypackages = dpkg_packages(work / "root"), python_packages(work / "root")
        done = assemble.assemble(work / "root", opts.out, work / "assembly", epoch, dtbs=board.dtbs,
                                 zstd_level=opts.zstd_level, step=progress.detail)
    manifest = opts.out.with_name(opts.out.name + ".manifest.json")
    manifest.write_text(json.dumps({
        "pikube": __version__, "board": board.name, "model": board.model,
        "suite": recipe.rootfs.suite, "architecture": recipe.rootfs.architecture,
        "rootfs_key": recipe.rootfs.key, "source_date_epoch": epoch,
        "image_bytes": done.size, "files": done.sha256,
        "debian_packages": packages, "python_packages": pypackages,
    }, indent=2) + "\n")
    progress.done()
    return Result(assembled=done, manifest=manifest, rootfs_built=built)


def clear_work(cache: Path) -> None:
    """Remove work folders a killed build left behind."""
    shutil.rmtree(cache / "work", ignore_errors=True)
