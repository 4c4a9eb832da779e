"""The device guard on recorded machines: which disk may be flashed, and what the user is told otherwise."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from pikube.flash import guard, probe
from pikube.flash.guard import Why, decide
from tests.conftest import require
from tests.flash.hosts import host


def whys(decision: guard.Decision) -> set[Why]:
    return {r.why for r in decision.refusals}


# -- a laptop with an NVMe system disk and a USB card reader ------------------------------------


def test_laptop_card_in_usb_reader_is_allowed_without_a_second_question() -> None:
    d = decide(host("laptop-nvme-usb-reader"), "/dev/sda")
    assert d.ok and not d.needs_second_confirmation
    assert d.device is not None and d.device.description == "Generic- SD/MMC/MS PRO, 31.9 GB, usb"


def test_laptop_nvme_system_disk_is_refused_even_when_forced() -> None:
    laptop = host("laptop-nvme-usb-reader")
    for forced in (False, True):
        d = decide(laptop, "/dev/nvme0n1", allow_system_disk=forced)
        assert not d.ok and Why.SYSTEM in whys(d)
        text = d.explain()
        assert "holds the running system" in text
        assert "/boot/efi on /dev/nvme0n1p1" in text and "/ on /dev/nvme0n1p2" in text
        assert "swap on /dev/nvme0n1p3" in text


def test_swap_alone_makes_a_disk_a_system_disk() -> None:
    """Swap known only from /proc/swaps (lsblk shows no [SWAP]) still counts."""
    laptop = host("laptop-nvme-usb-reader")
    nvme = laptop.devices[3]
    swap_only = dataclasses.replace(nvme, children=(dataclasses.replace(nvme.children[2], mountpoints=()),))
    d = decide(dataclasses.replace(laptop, devices=(swap_only,), mounts=()), "/dev/nvme0n1")
    assert Why.SYSTEM in whys(d) and "swap on /dev/nvme0n1p3" in d.explain()


def test_laptop_empty_reader_slot_and_mounted_backup_drive() -> None:
    laptop = host("laptop-nvme-usb-reader")
    empty = decide(laptop, "/dev/sdb")
    assert whys(empty) == {Why.NO_MEDIUM} and "is the card in the reader?" in empty.explain()
    backup = decide(laptop, "/dev/sdc")
    assert whys(backup) == {Why.MOUNTED}
    assert "/dev/sdc1 on /media/alice/Backup" in backup.explain() and "`sudo umount /dev/sdc1`" in backup.explain()


def test_a_partition_is_refused_with_the_whole_disk_named() -> None:
    d = decide(host("laptop-nvme-usb-reader"), "/dev/sda1")
    assert whys(d) == {Why.NOT_A_DISK}
    assert d.explain() == "/dev/sda1 is a part, not a whole disk; give the whole card: /dev/sda."


def test_an_unknown_device_is_refused() -> None:
    d = decide(host("laptop-nvme-usb-reader"), "/dev/sdz")
    assert whys(d) == {Why.NOT_A_DISK} and "`pikube flash --list`" in d.explain()


def test_list_shows_cards_and_nothing_else() -> None:
    shown = guard.candidates(host("laptop-nvme-usb-reader"))
    # The empty slot and the NVMe are not cards; the USB drive is shown (it is removable) with its note.
    assert [(c.device.path, c.note) for c in shown] == [("/dev/sda", ""),
                                                        ("/dev/sdc", "mounted: unmount before flashing")]


# -- a Pi writing a card for another Pi -----------------------------------------------------------


def test_pi_refuses_its_own_boot_card_and_allows_the_usb_reader() -> None:
    pi = host("pi-own-mmcblk0")
    own = decide(pi, "/dev/mmcblk0", allow_system_disk=True)
    assert whys(own) == {Why.SYSTEM}
    assert "/boot/firmware on /dev/mmcblk0p1" in own.explain() and "/ on /dev/mmcblk0p2" in own.explain()
    assert decide(pi, "/dev/sda").ok
    assert Why.SYSTEM in whys(decide(pi, "/dev/zram0"))  # swap on zram
    assert [c.device.path for c in guard.candidates(pi)] == ["/dev/sda"]


# -- a card in a laptop's internal reader (rm=0) --------------------------------------------------


def test_internal_reader_card_counts_as_removable_even_with_rm_0() -> None:
    laptop = host("laptop-internal-reader")
    card = decide(laptop, "/dev/mmcblk0")
    assert card.ok and not card.needs_second_confirmation


def test_soldered_emmc_is_a_fixed_disk_that_needs_the_force_flag() -> None:
    laptop = host("laptop-internal-reader")
    refused = decide(laptop, "/dev/mmcblk1")
    assert whys(refused) == {Why.FIXED} and "fixed, non-removable disk" in refused.explain()
    forced = decide(laptop, "/dev/mmcblk1", allow_system_disk=True)
    assert forced.ok and forced.needs_second_confirmation
    assert [c.device.path for c in guard.candidates(laptop)] == ["/dev/mmcblk0"]


def test_sata_system_disk_and_swapfile() -> None:
    d = decide(host("laptop-internal-reader"), "/dev/sda", allow_system_disk=True)
    assert whys(d) == {Why.SYSTEM}


# -- mounted, read-only ---------------------------------------------------------------------------


def test_mounted_card_names_every_mount_and_how_to_unmount() -> None:
    d = decide(host("mounted-card"), "/dev/sdb")
    assert whys(d) == {Why.MOUNTED}
    text = d.explain()
    # sdb1 from lsblk; sdb2 only from /proc/mounts, its escaped space decoded.
    assert "/dev/sdb1 on /media/bob/bootfs, /dev/sdb2 on /media/bob/root fs is mounted" in text
    assert "`sudo umount /dev/sdb1` `sudo umount /dev/sdb2`" in text
    assert [(c.device.path, c.note) for c in guard.candidates(host("mounted-card"))] == [
        ("/dev/sdb", "mounted: unmount before flashing")]


def test_root_on_lvm_over_luks_marks_the_nvme_as_system() -> None:
    d = decide(host("mounted-card"), "/dev/nvme0n1", allow_system_disk=True)
    assert whys(d) == {Why.SYSTEM} and "/ on /dev/mapper/vg-root" in d.explain()


def test_root_known_only_by_device_number_is_still_refused() -> None:
    """A root lsblk shows no mountpoint for (overlay, btrfs subvolume): the stat() device number decides."""
    machine = host("readonly-card")
    hidden = dataclasses.replace(machine.devices[1], children=(
        dataclasses.replace(machine.devices[1].children[0], mountpoints=()),))
    blind = dataclasses.replace(machine, devices=(machine.devices[0], hidden), mounts=())
    assert Why.SYSTEM not in whys(decide(blind, "/dev/sda"))
    seen = dataclasses.replace(blind, system_devnums=frozenset({"8:1"}))
    assert Why.SYSTEM in whys(decide(seen, "/dev/sda", allow_system_disk=True))


def test_read_only_card_from_an_older_lsblk() -> None:
    machine = host("readonly-card")
    d = decide(machine, "/dev/sdd")
    assert whys(d) == {Why.READ_ONLY} and "lock switch" in d.explain()
    assert [(c.device.path, c.note) for c in guard.candidates(machine)] == [("/dev/sdd", "read-only")]
    assert Why.SYSTEM in whys(decide(machine, "/dev/sda"))  # "mountpoint": "/" (singular) is read too


# -- loop devices ---------------------------------------------------------------------------------


def test_loop_devices_need_their_flag_and_still_must_be_unmounted() -> None:
    ci = host("loop-devices")
    assert whys(decide(ci, "/dev/loop1")) == {Why.LOOP}
    assert decide(ci, "/dev/loop1", allow_loop=True).ok
    assert not decide(ci, "/dev/loop1", allow_loop=True).needs_second_confirmation
    busy = decide(ci, "/dev/loop0", allow_loop=True)
    assert whys(busy) == {Why.MOUNTED} and "/dev/loop0p2 on /tmp/check-root" in busy.explain()
    assert whys(decide(ci, "/dev/loop2", allow_loop=True)) == {Why.MOUNTED, Why.READ_ONLY}
    assert whys(decide(ci, "/dev/vda", allow_system_disk=True)) == {Why.SYSTEM}
    assert guard.candidates(ci) == []


def test_the_force_flag_does_not_let_loop_devices_through() -> None:
    assert whys(decide(host("loop-devices"), "/dev/loop1", allow_system_disk=True)) == {Why.LOOP}


# -- the machine the tests run on -----------------------------------------------------------------


def test_live_the_disk_this_machine_runs_from_is_refused() -> None:
    require(subprocess.run(["lsblk", "--version"], capture_output=True, check=False).returncode == 0,
            "needs lsblk (util-linux)")
    machine = probe.host()
    st = os.stat("/")
    number = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    # The whole disk whose tree holds /'s device number (a partition, LVM over LUKS, or the disk itself).
    disks = [top.path for top in machine.devices if any(node.devnum == number for node in top.walk())]
    require(len(disks) == 1, f"needs / on a block device lsblk lists (/ is on {number})")
    for forced in (False, True):
        d = decide(machine, disks[0], allow_system_disk=forced, allow_loop=True)
        assert Why.SYSTEM in whys(d), d
        assert "holds the running system" in d.explain()
    assert disks[0] not in [c.device.path for c in guard.candidates(machine)]


@pytest.mark.parametrize("line,expected", [
    ("/dev/sdb2 /media/a\\040b ext4 rw 0 0", ("/dev/sdb2", "/media/a b")),
    ("/dev/sdb1 /mnt/tab\\011here vfat rw 0 0", ("/dev/sdb1", "/mnt/tab\there")),
    ("/dev/sdb1 /mnt/back\\134slash vfat rw 0 0", ("/dev/sdb1", "/mnt/back\\slash")),
])
def test_mount_table_escapes(line: str, expected: tuple[str, str]) -> None:
    (mount,) = guard.parse_mounts(line)
    assert (mount.source, mount.target) == expected
