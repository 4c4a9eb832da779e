"""kill -9 during a write loop: every acknowledged write survives, revisions keep increasing."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from master.store.sqlite import SqliteStore
from tests.master.store.conftest import rv

WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(db: Path, tag: str, acks: int) -> list[tuple[str, int, str]]:
    """Run the writer until it acknowledged `acks` durable writes, SIGKILL it, and
    return every line it printed (all acknowledged), READY excluded."""
    proc = subprocess.Popen([sys.executable, str(WRITER), str(db), tag], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    lines: list[tuple[str, int, str]] = []
    durable = 0
    try:
        for line in proc.stdout:
            op, rev, key = line.split()
            if op == "READY":
                continue
            lines.append((op, int(rev), key))
            durable += op != "V"
            if durable >= acks:
                proc.send_signal(signal.SIGKILL)
                break
        lines.extend((op, int(rev), key) for op, rev, key in (ln.split() for ln in proc.stdout))
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    return lines


def check(db: Path, lines: list[tuple[str, int, str]]) -> None:
    last: dict[str, tuple[str, int]] = {}
    for op, rev, key in lines:
        if op != "V":
            last[key] = (op, rev)
    top = max(rev for _, rev, _ in lines)
    first = min(rev for _, rev, _ in lines)
    store = SqliteStore(db)
    try:
        for key, (op, rev) in last.items():
            got = store.get(key)
            if op == "D":
                # The writer never touches a key again after deleting it.
                assert got is None, key
            elif got is None:
                # Only an unacknowledged deletion right after an acknowledged update may remove it.
                assert op == "U" and int(key.rsplit("/p", 1)[1]) % 3 == 0, (key, op, rev)
            else:
                # Acknowledged, so present; at most one later unacknowledged write may have landed.
                assert rv(got) >= rev, (key, op, rev)
                if rv(got) == rev:
                    assert got["spec"]["n"] == (0 if op == "C" else 1)
        # A client resuming its watch from before the crash gets every acknowledged durable write.
        w = store.watch("/pods/", first - 1)
        replayed = set()
        while (e := w.next(0.05)) is not None:
            replayed.add(e.revision)
        w.close()
        assert {rev for op, rev, _ in lines if op != "V"} <= replayed
        assert store.revision() >= top
        assert rv(store.create(f"/after/{top}", {"metadata": {"name": "x"}})) > top
    finally:
        store.close()


def test_acknowledged_writes_survive_sigkill_twice(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first = run_and_kill(db, "one", acks=150)
    assert any(op == "V" for op, _, _ in first) and any(op == "D" for op, _, _ in first)
    check(db, first)
    second = run_and_kill(db, "two", acks=150)  # recovers the crashed file, then crashes again
    assert min(rev for _, rev, _ in second) > max(rev for _, rev, _ in first)
    check(db, first + second)
