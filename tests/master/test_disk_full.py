"""A master whose SD card is full: every write fails inside the master, and neither the log nor the master falls over.

The data directory is a small tmpfs that the test fills to the last byte, as a
worn or full card ends up. A thousand creates then fail in the store; each must
answer a `Status` 500 at once and leave one log line (tracebacks are rate
limited), so the log grows by less than 1 MB; nothing half-written shows up, and
once space is freed the same master stores again.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pikube.dev.localmaster import RunningMaster, start_master
from tests.conftest import require

pytestmark = pytest.mark.integration


@pytest.fixture
def small_card(tmp_path: Path) -> Iterator[Path]:
    require(subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0",
            "needs root to mount a tmpfs")
    card = tmp_path / "card"
    card.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(card)], check=True)
    try:
        yield card
    finally:
        subprocess.run(["umount", "-l", str(card)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_full_card_fails_writes_briefly_and_recovers(small_card: Path) -> None:
    m: RunningMaster = start_master(small_card / "data")
    try:
        s = m.session()
        url = f"{m.url}/api/v1/namespaces/default/configmaps"
        assert s.post(url, json={"metadata": {"name": "before"}}, timeout=5).status_code == 201
        filler = fill(small_card)
        log_before = m.log_path.stat().st_size
        codes: dict[int, int] = {}
        for i in range(1000):
            r = s.post(url, json={"metadata": {"name": f"c{i}"}, "data": {"k": "v" * 512}}, timeout=5)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code >= 500:
                assert r.json()["kind"] == "Status"
        grown = m.log_path.stat().st_size - log_before
        assert codes.get(201, 0) < 50 and sum(c for k, c in codes.items() if k >= 500) > 900, codes
        assert grown < 2**20, f"the log grew by {grown} bytes"
        stored = {c["metadata"]["name"] for c in s.get(url, timeout=5).json()["items"]}
        assert "before" in stored
        filler.unlink()
        r = s.post(url, json={"metadata": {"name": "after"}}, timeout=5)
        assert r.status_code == 201, r.text
        assert m.proc.poll() is None
    finally:
        m.stop()
