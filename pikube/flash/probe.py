"""Gathering the guard's input from this machine: lsblk, /proc/self/mounts, /proc/swaps, stat.

Kept apart from `guard` so the decision stays a pure function that tests feed
with recorded laptops and Pis; this is the only part that asks the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pikube.flash.errors import FlashError
from pikube.flash.guard import SYSTEM_MOUNTS, Host, parse_lsblk, parse_mounts, parse_swaps

LSBLK_COLUMNS = "NAME,KNAME,MAJ:MIN,TYPE,RM,HOTPLUG,RO,TRAN,SIZE,MODEL,VENDOR,MOUNTPOINTS"


class ProbeError(FlashError):
    """The machine's disks could not be listed; the message says what to install or run."""


def lsblk_json() -> str:
    if shutil.which("lsblk") is None:
        raise ProbeError("lsblk is missing: install util-linux to let pikube check which disk is a card.")
    proc = subprocess.run(["lsblk", "--json", "--bytes", "--paths", "--output", LSBLK_COLUMNS],
                          capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise ProbeError(f"lsblk failed: {proc.stderr.strip()}")
    return proc.stdout


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _devnum(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


def host() -> Host:
    """This machine as the guard sees it."""
    devnums = {num for point in SYSTEM_MOUNTS if (num := _devnum(point)) is not None}
    return Host(devices=parse_lsblk(lsblk_json()), mounts=parse_mounts(_read("/proc/self/mounts")),
                swaps=parse_swaps(_read("/proc/swaps")), system_devnums=frozenset(devnums))
