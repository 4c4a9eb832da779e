"""Files in a FAT partition of an image or card, written and read with mtools — never mounted.

Mounting needs root, a vfat driver and a loop device; Raspberry Pi Imager
avoids all three with its own FAT writer, pikube with mtools (`mcopy -i
IMAGE@@OFFSET`), which reads and writes the partition inside the image file or
card at a byte offset. Missing mtools is reported as a sentence saying what
to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pikube.flash.errors import FlashError


class FatError(FlashError):
    """mtools is missing or failed; the message says which and why."""


def _env() -> dict[str, str]:
    # No user or system mtools config (drive letters, mtools_lower_case) changes what we write;
    # MTOOLS_SKIP_CHECK lets mtools accept a FAT whose geometry fields it would nitpick.
    return {**os.environ, "MTOOLSRC": "/dev/null", "MTOOLS_SKIP_CHECK": "1"}


def _run(tool: str, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which(tool)
    if exe is None:
        raise FatError(f"writing the board's settings needs mtools (`{tool}`): install the mtools package.")
    return subprocess.run([exe, *args], capture_output=True, env=_env(), check=False, timeout=120)


def _drive(path: Path, offset: int) -> str:
    return f"{path}@@{offset}"


def write_file(path: Path, offset: int, name: str, data: bytes) -> None:
    """Create or replace `name` in the root directory of the FAT at `offset` bytes into `path`."""
    with tempfile.TemporaryDirectory(prefix="pikube-fat-") as tmp:
        local = Path(tmp) / name
        local.write_bytes(data)
        proc = _run("mcopy", ["-o", "-i", _drive(path, offset), str(local), f"::/{name}"])
    if proc.returncode != 0:
        raise FatError(f"could not write {name} into the FAT partition of {path}: "
                       f"{proc.stderr.decode(errors='replace').strip()}")


def read_file(path: Path, offset: int, name: str) -> bytes | None:
    """The bytes of `name` in the FAT's root directory, or None if there is no such file."""
    proc = _run("mcopy", ["-n", "-i", _drive(path, offset), f"::/{name}", "-"])
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        if "not found" in err:
            return None
        raise FatError(f"could not read the FAT partition of {path}: {err}")
    return proc.stdout


def names(path: Path, offset: int) -> list[str]:
    """The names in the FAT's root directory (long names where there are some)."""
    proc = _run("mdir", ["-b", "-i", _drive(path, offset), "::/"])
    if proc.returncode != 0:
        raise FatError(f"could not list the FAT partition of {path}: {proc.stderr.decode(errors='replace').strip()}")
    return [line.removeprefix("::/") for line in proc.stdout.decode().splitlines() if line.strip()]
