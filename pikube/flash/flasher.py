"""One flash from start to end: check everything, write, verify, preseed — in that order.

`plan` does every check that can refuse (the image, the target, the guard,
the card's size, root) and touches nothing; `run` then writes, syncs, reads
back and preseeds. Keeping the two apart is what lets the CLI promise that bad
input is refused before a byte is written, and lets tests (and the lead's
end-to-end boot test) drive a flash without the CLI.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pikube.flash import guard, probe, seed, source, target, verify, writer
from pikube.flash.errors import FlashError
from pikube.flash.progress import Progress, Silent


class Refused(FlashError):
    """The target may not be written (the guard said no, or it is too small, or root is missing)."""


@dataclass(frozen=True)
class Plan:
    image: source.Image
    target: target.TargetInfo
    decision: guard.Decision | None  # None for a regular file


@dataclass(frozen=True)
class Report:
    plan: Plan
    written: writer.Written
    write_seconds: float
    verified: verify.Verified | None
    verify_seconds: float
    seeded: seed.Seeded | None


def plan(image_path: Path, target_path: Path, *, use_bmap: bool = True, allow_system_disk: bool = False,
         allow_loop: bool = False, host: guard.Host | None = None, euid: int | None = None) -> Plan:
    """Every check before writing; raises a FlashError subclass (a sentence) on the first problem."""
    image = source.inspect(image_path, use_bmap=use_bmap)
    info = target.describe(target_path)
    if info.exists and os.path.samefile(image_path, target_path):
        raise Refused(f"{target_path} is the image itself; give a card or another file.")
    decision = None
    if info.is_block:
        decision = check_device(target_path, host=host, allow_system_disk=allow_system_disk,
                                allow_loop=allow_loop, euid=euid)
        info = target.measured(info)
        if info.size < image.size:
            raise Refused(f"{target_path} holds {guard.human_size(info.size)} ({info.size} bytes) but the image "
                          f"needs {guard.human_size(image.size)} ({image.size} bytes): use a bigger card.")
    return Plan(image, info, decision)


def check_device(path: Path, *, host: guard.Host | None = None, allow_system_disk: bool = False,
                 allow_loop: bool = False, euid: int | None = None) -> guard.Decision:
    """The guard's verdict on a block device, then root; Refused if either says no."""
    decision = guard.decide(host if host is not None else probe.host(), os.path.realpath(path),
                            allow_system_disk=allow_system_disk, allow_loop=allow_loop)
    if not decision.ok:
        raise Refused(decision.explain())
    if (os.geteuid() if euid is None else euid) != 0:
        raise Refused(f"writing to {path} needs root (it is a block device); run the same command with sudo.")
    return decision


def run(the_plan: Plan, *, config: bytes | None = None, check: bool = True, progress: Progress | None = None,
        before_verify: Callable[[Path], None] | None = None) -> Report:
    """Write, fsync, verify (unless `check` is False), then preseed `config` as pikube.yaml.

    `before_verify` is called with the target's path after the write is on the medium and before it
    is read back: tests use it to corrupt a byte, as a failing card would.
    """
    progress = progress or Silent()
    started = time.monotonic()
    out = target.Target(the_plan.target, the_plan.image.size)
    # The card stays claimed (O_EXCL) until pikube.yaml is checked: the kernel refuses to mount it
    # meanwhile, so a desktop's automounter cannot pick up the new partitions half way.
    try:
        written = writer.write(the_plan.image, out, progress, hashing=check)
        write_seconds = time.monotonic() - started
        if before_verify is not None:
            before_verify(the_plan.target.path)
        verified, verify_seconds = None, 0.0
        if check:
            started = time.monotonic()
            verified = verify.verify(the_plan.image, the_plan.target.path, written.chunks, progress)
            verify_seconds = time.monotonic() - started
        seeded = None
        if config is not None:
            seeded = seed.preseed_bytes(the_plan.target.path, config, claim=False)
    finally:
        out.close()
    return Report(the_plan, written, write_seconds, verified, verify_seconds, seeded)
