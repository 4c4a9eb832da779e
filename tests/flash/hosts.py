"""Recorded machines for the device guard: lsblk --json, /proc/self/mounts and /proc/swaps in one file each."""

from __future__ import annotations

import json
from pathlib import Path

from pikube.flash.guard import Host, parse_lsblk, parse_mounts, parse_swaps

FIXTURES = Path(__file__).parent / "fixtures"


def host(name: str) -> Host:
    raw = json.loads((FIXTURES / f"{name}.json").read_text())
    return Host(devices=parse_lsblk(json.dumps(raw["lsblk"])), mounts=parse_mounts(raw["mounts"]),
                swaps=parse_swaps(raw["swaps"]))
