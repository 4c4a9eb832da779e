"""image-builder/ read as data: the real recipe loads, and the rootfs cache key moves with exactly its inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pikube.image import recipe, rootfs, wheels


def test_the_real_recipe_loads_with_the_packages_a_board_needs() -> None:
    r = recipe.load()
    assert {"linux-image-arm64", "raspi-firmware", "firmware-brcm80211", "docker.io", "busybox-static",
            "openssh-server", "python3-venv", "wpasupplicant", "nftables"} <= set(r.rootfs.packages)
    assert r.rootfs.architecture == "arm64" and "non-free-firmware" in r.rootfs.components
    assert [s.name for s in r.steps] == sorted(s.name for s in r.steps)
    assert not r.boards["rpi5"].supported and "Pi 5" in r.boards["rpi5"].model
    assert all(b.dtbs for b in r.boards.values() if b.supported)


def test_the_rootfs_key_changes_with_the_package_list_and_not_with_a_step(tmp_path: Path) -> None:
    copy = tmp_path / "ib"
    shutil.copytree(recipe.default_root(), copy, symlinks=True)
    before = recipe.load(copy).rootfs.key
    (copy / "steps" / "10-overlay.sh").write_text("#!/bin/sh\ntrue\n")
    (copy / "overlay" / "new-file").write_text("x")
    assert recipe.load(copy).rootfs.key == before
    with (copy / "rootfs" / "packages.txt").open("a") as f:
        f.write("htop\n")
    assert recipe.load(copy).rootfs.key != before


def test_the_mmdebstrap_command_carries_the_recipe(tmp_path: Path) -> None:
    r = recipe.load().rootfs
    cmd = rootfs.mmdebstrap_command(r, tmp_path / "x.tar")
    assert cmd[:2] == ["mmdebstrap", "--mode=root"]
    assert "--architectures=arm64" in cmd and "--dpkgopt=force-confold" in cmd
    assert f"--include={','.join(r.packages)}" in cmd
    assert cmd[cmd.index(r.suite) + 1] == str(tmp_path / "x.tar")
    assert cmd[-len(r.mirrors):] == list(r.mirrors)


def test_a_broken_recipe_names_its_file(tmp_path: Path) -> None:
    copy = tmp_path / "ib"
    shutil.copytree(recipe.default_root(), copy, symlinks=True)
    conf = copy / "rootfs" / "rootfs.toml"
    conf.write_text(conf.read_text().replace('suite = "bookworm"', "suite = 3"))
    with pytest.raises(recipe.RecipeError, match=r"rootfs.toml: `suite` must be a non-empty string"):
        recipe.load(copy)


def test_the_board_venv_leaves_out_laptop_side_dependencies() -> None:
    reqs = wheels.board_requirements(recipe.default_root().parent / "pyproject.toml", recipe.load().board_excludes)
    names = {wheels._name(r) for r in reqs}
    assert {"flask", "cryptography", "pyroute2", "docker", "pyyaml"} <= names
    assert not names & {"ansible-core", "paramiko"}
