"""Growing the root partition and its ext4 for real, on a small disk image file (no loop device, no root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from core.boardconfig import BoardConfig
from pikube.firstboot import growfs
from pikube.firstboot.host import Completed, SubprocessRunner
from pikube.firstboot.step import StepError
from tests.conftest import require
from tests.firstboot.fakes import make_host

MIB = 1 << 20
ROOT_START = 10 * 2048  # sectors: a 1 MiB gap and an 9 MiB FAT before the root partition, like the image


class Spy:
    """The real runner, noting each command."""

    def __init__(self, run: SubprocessRunner) -> None:
        self.run = run
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
                 env: Mapping[str, str] | None = None, echo: bool = False) -> Completed:
        self.calls.append(tuple(argv))
        return self.run(argv, input=input, check=check, env=env, echo=echo)


def tools() -> None:
    needed = ("sfdisk", "mkfs.ext4", "resize2fs", "e2fsck", "dumpe2fs", "debugfs")
    missing = [t for t in needed if shutil.which(t) is None]
    require(not missing, f"missing {missing} (fdisk and e2fsprogs)")


def make_card(path: Path, card_mib: int, root_mib: int) -> Path:
    """A card image: MBR, a FAT-typed first partition, a root partition holding a fresh ext4 with a file."""
    with open(path, "wb") as f:
        f.truncate(card_mib * MIB)
    table = f"label: dos\nstart=2048, size={ROOT_START - 2048}, type=c\nstart={ROOT_START}, size={root_mib * 2048}, " \
            "type=83\n"
    subprocess.run(["sfdisk", "--quiet", str(path)], input=table, text=True, check=True)
    content = path.parent / "content"
    content.mkdir()
    (content / "hello").write_text("still here\n")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", str(content), "-E", f"offset={ROOT_START * 512}",
                    str(path), f"{root_mib}M"], check=True, capture_output=True)
    return path


def partitions(path: Path) -> list[dict[str, int]]:
    out = subprocess.run(["sfdisk", "--json", str(path)], capture_output=True, text=True, check=True).stdout
    parts: list[dict[str, int]] = json.loads(out)["partitiontable"]["partitions"]
    return parts


def fs_bytes(path: Path) -> int:
    out = subprocess.run(["dumpe2fs", "-h", f"{path}?offset={ROOT_START * 512}"], capture_output=True, text=True,
                         check=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(fields["Block count"]) * int(fields["Block size"])


def test_the_root_partition_and_file_system_grow_to_the_end_of_the_card(tmp_path: Path) -> None:
    tools()
    card = make_card(tmp_path / "card.img", card_mib=96, root_mib=24)
    assert fs_bytes(card) == 24 * MIB
    run = SubprocessRunner(timeout=120)
    did, what = growfs.grow(run, growfs.RootPartition(disk=str(card), number=2, device=""))
    assert did and what == f"partition 2 of {card} grown from 24 MiB to 86 MiB, file system too"
    fat, root = partitions(card)
    assert (fat["start"], fat["size"]) == (2048, ROOT_START - 2048)  # the boot partition is untouched
    assert root["start"] == ROOT_START and root["start"] + root["size"] == 96 * 2048
    assert fs_bytes(card) == 86 * MIB
    check = subprocess.run(["e2fsck", "-fn", f"{card}?offset={ROOT_START * 512}"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listing = subprocess.run(["debugfs", "-R", "cat /hello", f"{card}?offset={ROOT_START * 512}"],
                             capture_output=True, text=True, check=True)
    assert listing.stdout == "still here\n"
    # a second time: nothing to do, nothing run but the look at the table
    spy = Spy(run)
    did, what = growfs.grow(spy, growfs.RootPartition(disk=str(card), number=2, device=""))
    assert not did and what == f"partition 2 of {card} already fills it (86 MiB)"
    assert [c[:2] for c in spy.calls] == [("sfdisk", "--json")]


def test_a_missing_partition_is_a_clear_failure(tmp_path: Path) -> None:
    tools()
    card = make_card(tmp_path / "card.img", card_mib=48, root_mib=8)
    with pytest.raises(StepError, match="has no partition 3"):
        growfs.grow(SubprocessRunner(timeout=60), growfs.RootPartition(disk=str(card), number=3, device=""))


def test_the_root_partition_is_found_through_sys(tmp_path: Path) -> None:
    sys_root = tmp_path / "sys"
    part = sys_root / "devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0/mmcblk0p2"
    part.mkdir(parents=True)
    (part / "partition").write_text("2\n")
    (sys_root / "dev/block").mkdir(parents=True)
    (sys_root / "dev/block/179:2").symlink_to("../../devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/"
                                             "mmc0:0001/block/mmcblk0/mmcblk0p2")
    found = growfs.locate(sys_root, os.makedev(179, 2))
    assert found == growfs.RootPartition(disk="/dev/mmcblk0", number=2, device="/dev/mmcblk0p2")
    whole = sys_root / "devices/virtual/block/zram0"
    whole.mkdir(parents=True)
    (sys_root / "dev/block/252:0").symlink_to("../../devices/virtual/block/zram0")
    with pytest.raises(StepError, match=r"\(device 252:0\) is not on a disk partition"):
        growfs.locate(sys_root, os.makedev(252, 0))


def test_the_step_only_touches_the_running_system(tmp_path: Path) -> None:
    host, runner, _, _ = make_host(tmp_path)
    assert growfs.growfs(host, BoardConfig()).message == "not the running system's root"
    assert runner.calls == []
