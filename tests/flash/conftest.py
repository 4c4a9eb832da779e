"""A small pikube-shaped image (and its .bmap, .zst, .xz, .gz) built once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pikube.dev import cardimage
from tests.conftest import require

TOKEN = f"pikube-{'0123456789abcdef' * 4}::abcdef.0123456789abcdef"


@pytest.fixture(scope="session")
def card_image(tmp_path_factory: pytest.TempPathFactory) -> cardimage.CardImage:
    """p.img: 4 MiB gap, 34 MiB FAT32 with config.txt and cmdline.txt, 10 MiB ext4 with 2 MiB of data; + p.img.bmap."""
    missing = cardimage.missing_tools() + [t for t in ("zstd", "xz", "gzip", "mdir", "e2fsck") if not shutil.which(t)]
    require(not missing, f"needs {', '.join(missing)} (dosfstools, e2fsprogs, fdisk, mtools, bmap-tools, zstd)")
    image = cardimage.make(tmp_path_factory.mktemp("image") / "p.img", data_mib=2, with_bmap=True)
    for kind in ("zst", "xz", "gz"):
        cardimage.compress(image.path, kind)
    return image


@pytest.fixture
def image_copy(card_image: cardimage.CardImage, tmp_path: Path) -> Path:
    """A private copy of p.img (no bmap beside it), for tests that edit or damage it."""
    copy = tmp_path / "copy.img"
    shutil.copyfile(card_image.path, copy)
    return copy
