"""The wheel bundle a board installs pikube from, offline: pikube's wheel and its dependencies' wheels.

Boards have no compiler and may have no Internet, so the laptop builds one directory
that pip on any supported board can install from with `--no-index`: pikube's own
wheel plus binary dependency wheels for the boards' Python (bookworm's 3.11) on
aarch64 (Raspberry Pi OS 64-bit, Debian arm64) and x86_64 (test boards, PCs). pip
picks the wheels matching the board by their tags. The work is the image builder's
(`pikube.image.wheels`): same excludes, same tested versions.

Both `pikube provision` and the Ansible `pikube` role (its `pikube_bundle_dir`)
install from this directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import tarfile
import tempfile
import tomllib
from pathlib import Path

from pikube.image import recipe, wheels
from pikube.image.rootfs import BuildError

# The source tree this pikube runs from (image-builder/ and pyproject.toml live there).
SOURCE = Path(__file__).resolve().parents[2]
X86_64_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
MANIFEST = "bundle.json"
ARCHES = ("aarch64", "x86_64")
_WHEEL_NAME = re.compile(r"^pikube-([^-]+)-")


class BundleError(Exception):
    """The bundle could not be made or read; the message says why."""


def fits(wheel: str, arch: str) -> bool:
    """Whether a wheel (by its file name) installs on a board of `arch`."""
    return not any(a in wheel for a in ARCHES if a != arch)


def archive_name(arch: str) -> str:
    return f"wheels-{arch}.tar"


def _write_archive(dest: Path, wheels: list[Path], arch: str) -> None:
    """One tar of the wheels for `arch`, byte-identical for the same wheels (copied as one file, unpacked there)."""
    with tarfile.open(dest / archive_name(arch), "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(w for w in wheels if fits(w.name, arch)):
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "root", "root", 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)


def pikube_version(bundle: Path) -> str:
    """The version of the pikube wheel in `bundle`."""
    found = [m.group(1) for p in bundle.glob("pikube-*.whl") if (m := _WHEEL_NAME.match(p.name))]
    if len(found) != 1:
        raise BundleError(f"{bundle} must hold exactly one pikube wheel, not {len(found)}: "
                          "make it with `pikube provision --write-bundle DIR`.")
    return found[0]


def make(dest: Path, source: Path = SOURCE) -> str:
    """Build pikube's wheel and fetch the boards' wheels into `dest` (emptied first); pikube's version."""
    root = source / "image-builder"
    if not (root / "python.toml").exists():
        raise BundleError(f"{source} is not a pikube source tree (no image-builder/python.toml): the bundle is "
                          "made from pikube's source.")
    aarch64 = wheels.load_target(root / "python.toml")
    try:
        excludes = recipe.load(root).board_excludes  # the image's own list of laptop-only packages
    except recipe.RecipeError as exc:
        raise BundleError(str(exc)) from None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        wheels.collect(source, aarch64, excludes, dest)
        x86 = dataclasses.replace(aarch64, platforms=X86_64_PLATFORMS)
        with tempfile.TemporaryDirectory() as tmp:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text(wheels.tested_versions())
            requirements = wheels.board_requirements(source / "pyproject.toml", excludes)
            proc = subprocess.run(wheels.download_command(x86, requirements, dest, constraints),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
            if proc.returncode != 0:
                raise BundleError("downloading the x86_64 wheels failed:\n" + "\n".join(proc.stdout.splitlines()[-20:]))
    except BuildError as exc:
        raise BundleError(str(exc)) from None
    (dest / "constraints.txt").unlink(missing_ok=True)
    version = pikube_version(dest)
    wheel_paths = sorted(dest.glob("*.whl"))
    for arch in ARCHES:
        _write_archive(dest, wheel_paths, arch)
    manifest = {"pikube": version, "wheels": [p.name for p in wheel_paths],
                "archives": {arch: archive_name(arch) for arch in ARCHES}}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return version


def source_version(source: Path = SOURCE) -> str:
    return str(tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"])


def ensure(dest: Path, source: Path = SOURCE) -> str:
    """`make` unless `dest` already holds a bundle of this source's pikube version; that version."""
    if (dest / MANIFEST).exists():
        with contextlib.suppress(BundleError):
            if pikube_version(dest) == source_version(source):
                return source_version(source)
    return make(dest, source)
