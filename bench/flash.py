"""Flash benchmark: `pikube flash` against `dd bs=4M conv=fsync` (and `bmaptool copy`), same image, same run.

Builds two pikube-shaped images (`pikube.dev.cardimage`): one about half full
like the real image (961 of 1,696 MB mapped), one with both filesystems
nearly full of random data (little to skip, so it measures the copy itself). Each is written, in
interleaved rounds, to a fresh file and to a loop device by:

- `dd if=IMG of=TARGET bs=4M conv=fsync` (the baseline; writes every byte);
- `bmaptool copy --bmap IMG.bmap IMG TARGET` (checks source ranges, no read-back);
- pikube without the bmap and with it, each once with `--no-verify` (no
  hashing at all: the figure to hold against dd) and once verified (SHA-256
  while writing, then the read-back with the page cache dropped; the
  read-back's own time is shown in brackets).

Printed: median seconds and image MB/s (image size ÷ time, so skipping is
credited; pikube's include its checks and lsblk), pikube's `--no-verify`
speed over dd's, paired round by round (target ≥ 0.9), the verify cost, and
the bytes the bmap let it skip. Needs root for the loop device (else files only).

    .venv/bin/python -m bench.flash [--rounds 6] [--image-mib 256]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pikube.dev import cardimage
from pikube.flash import flasher, guard

MIB = 1 << 20


def say(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stdout}{proc.stderr}")
    return elapsed


class Target:
    """A fresh file per write, or one loop device written over and over."""

    def __init__(self, kind: str, work: Path, size: int) -> None:
        self.kind = kind
        self.work = work
        self.path = work / f"{kind}-card.bin"
        self.loop: Path | None = None
        if kind == "loop":
            with open(self.path, "wb") as backing:
                backing.truncate(size)
            proc = subprocess.run(["losetup", "--find", "--show", str(self.path)], capture_output=True, text=True,
                                  check=True)
            self.loop = Path(proc.stdout.strip())

    def fresh(self) -> Path:
        if self.loop is not None:
            return self.loop
        self.path.unlink(missing_ok=True)
        return self.path

    def close(self) -> None:
        if self.loop is not None:
            subprocess.run(["losetup", "-d", str(self.loop)], check=False)
        self.path.unlink(missing_ok=True)


def pikube_once(image: Path, target: Path, use_bmap: bool, check: bool) -> tuple[float, flasher.Report]:
    """One flash as `pikube flash [--no-bmap] [--no-verify]` does it (no settings to preseed), timed whole."""
    start = time.perf_counter()
    report = flasher.run(flasher.plan(image, target, use_bmap=use_bmap, allow_loop=True), check=check)
    return time.perf_counter() - start, report


def one_round(image: cardimage.CardImage, target: Target, turn: int, samples: dict[str, list[float]]) -> int:
    """Every tool once, in an order rotated by `turn` (no tool always first, on a cold cache, or last)."""
    skipped = 0

    def tool(name: str) -> None:
        out = str(target.fresh())
        argv = (["dd", f"if={image.path}", f"of={out}", "bs=4M", "conv=fsync", "status=none"] if name == "dd" else
                ["bmaptool", "-q", "copy", "--bmap", str(image.bmap), str(image.path), out])
        samples[name].append(timed(argv))

    def pikube(prefix: str, use_bmap: bool, check: bool) -> None:
        nonlocal skipped
        seconds, report = pikube_once(image.path, target.fresh(), use_bmap, check)
        samples[prefix + ("on" if check else "off")].append(seconds)
        if check:
            samples[prefix + "on_verify"].append(report.verify_seconds)
        skipped = report.written.skipped

    steps: list[Callable[[], None]] = [lambda: tool("dd"), lambda: pikube("", False, False), lambda: tool("bmaptool"),
             lambda: pikube("", False, True), lambda: pikube("b", True, False), lambda: pikube("b", True, True)]
    for step in steps[turn % len(steps):] + steps[:turn % len(steps)]:
        step()
    # dd and pikube --no-verify ran one after the other (or wrapped around): their ratio is paired.
    samples["ratio"].append(samples["dd"][-1] / samples["off"][-1])
    return skipped


def run_image(name: str, image: cardimage.CardImage, targets: list[Target], rounds: int) -> list[dict[str, Any]]:
    results = []
    for target in targets:
        keys = ("dd", "bmaptool", "off", "on", "on_verify", "boff", "bon", "bon_verify", "ratio")
        samples: dict[str, list[float]] = {k: [] for k in keys}
        skipped = 0
        for i in range(rounds):
            say(f"{name} → {target.kind}: round {i + 1}/{rounds}")
            skipped = one_round(image, target, i, samples)
        med = {k: statistics.median(v) for k, v in samples.items()}
        results.append({"image": name, "target": target.kind, "image_bytes": image.size, "skipped_bytes": skipped,
                        "ratios": [round(r, 2) for r in samples["ratio"]],
                        **{f"{k}_s": round(v, 3) for k, v in med.items()}})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds (each tool's place rotates over 6)")
    parser.add_argument("--image-mib", type=int, default=256, help="size of each test image (≥ 128)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args()
    missing = cardimage.missing_tools()
    if missing:
        raise SystemExit(f"bench.flash needs {', '.join(missing)}")
    work = Path(tempfile.mkdtemp(prefix="pikube-bench-flash-"))
    fat_mib = 64
    root_mib = args.image_mib - cardimage.FAT_START_MIB - fat_mib
    kinds = ["file"] + (["loop"] if os.geteuid() == 0 and shutil.which("losetup") else [])
    if "loop" not in kinds:
        say("not root: loop device skipped")
    targets: list[Target] = []
    try:
        say("building the images")
        half = cardimage.make(work / "half.img", fat_mib=fat_mib, root_mib=root_mib, data_mib=root_mib // 2,
                              with_bmap=True)
        # Random data in both filesystems: little but metadata and the 4 MiB gap is left to skip.
        full_root = args.image_mib - cardimage.FAT_START_MIB - 34
        full = cardimage.make(work / "full.img", fat_mib=34, root_mib=full_root, data_mib=full_root * 9 // 10 - 12,
                              fat_files={"filler.bin": os.urandom(30 * MIB)}, with_bmap=True)
        targets = [Target(kind, work, args.image_mib * MIB + 16 * MIB) for kind in kinds]
        results: list[dict[str, Any]] = []
        for name, image in (("half full", half), ("full", full)):
            results += run_image(name, image, targets, args.rounds)
    finally:
        for target in targets:
            target.close()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.rounds} rounds, medians")
    print("| image | target | dd s (MB/s) | bmaptool copy s | pikube --no-bmap --no-verify s (MB/s) "
          "| ÷ dd speed, paired per round: median (all) (target ≥ 0.9) "
          "| pikube --no-bmap, verified s (of which verify) "
          "| pikube bmap --no-verify s | pikube bmap, verified s (of which verify) | skipped by the bmap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        size, dd, off = int(r["image_bytes"]), float(r["dd_s"]), float(r["off_s"])
        print(f"| {r['image']} ({guard.human_size(size)}) | {r['target']} | {dd:.2f} ({size / dd / 1e6:.0f}) "
              f"| {r['bmaptool_s']:.2f} | {off:.2f} ({size / off / 1e6:.0f}) "
              f"| {r['ratio_s']:.2f} ({', '.join(str(x) for x in r['ratios'])}) "
              f"| {r['on_s']:.2f} ({r['on_verify_s']:.2f}) | {r['boff_s']:.2f} | {r['bon_s']:.2f} "
              f"({r['bon_verify_s']:.2f}) | {guard.human_size(int(r['skipped_bytes']))} of {guard.human_size(size)} |")
    if args.json:
        print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
