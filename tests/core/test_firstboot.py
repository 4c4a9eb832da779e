"""firstboot.json: written and read back whole; a foreign or damaged file reads as no record."""

from __future__ import annotations

from pathlib import Path

from core import firstboot
from core.firstboot import Record, StepRecord


def test_a_record_round_trips(tmp_path: Path) -> None:
    rec = Record(result=firstboot.FAILED, source="/boot/firmware/pikube.yaml", config_sha256="a" * 64,
                 written_sha256="b" * 64, started="2026-01-01T00:00:00Z", finished="2026-01-01T00:01:00Z",
                 problems=("x: y.",), steps=(StepRecord("hostname", firstboot.DONE, "set to pi-1", "", "t", 0.5),
                                             StepRecord("role", firstboot.STEP_FAILED, error="refused")))
    path = tmp_path / "firstboot.json"
    path.write_text(rec.to_json())
    assert firstboot.load(path) == rec
    assert [s.name for s in rec.failed_steps] == ["role"]


def test_what_is_not_a_record_reads_as_none(tmp_path: Path) -> None:
    assert firstboot.load(tmp_path / "absent.json") is None
    for text in ("", "{", "[]", '{"format": 2, "result": "applied"}', '{"format": 1}', "\xff"):
        assert firstboot.from_json(text) is None, text
    odd = firstboot.from_json('{"format": 1, "result": "applied", "steps": [{"name": "x", "seconds": "slow"}, 3],'
                              ' "problems": ["p", 4]}')
    assert odd == Record(result="applied", steps=(StepRecord("x", ""),), problems=("p",))
