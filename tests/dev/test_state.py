"""The state file: round trip, exclusive claim, and clear errors for missing or damaged state."""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from pikube.dev import boards, state
from pikube.dev.errors import DevError
from pikube.dev.naming import RunId
from pikube.dev.state import EngineRecord, Phase, ProcessRecord, State


def _state() -> State:
    lan = boards.plan(RunId("abcdef"), ["master", "worker-1"], IPv4Network("10.250.9.0/24"))
    return State(
        run=RunId("abcdef"),
        phase=Phase.UP,
        workers=1,
        engine=EngineRecord(host="unix:///x/docker.sock", root="/x", pid=42),
        lan=lan,
        processes=(ProcessRecord(board="master", name="m", pid=7, argv=("sleep", "1"), log="/x/m.log"),),
    )


def test_state_survives_a_round_trip() -> None:
    original = _state()
    assert State.from_json(original.to_json()) == original


def test_claim_is_exclusive(tmp_path: Path) -> None:
    state.claim(tmp_path, _state())
    with pytest.raises(DevError, match="already holds a dev cluster"):
        state.claim(tmp_path, _state())
    assert state.load(tmp_path) == _state()


def test_save_replaces_the_file(tmp_path: Path) -> None:
    state.claim(tmp_path, _state())
    stopping = State.from_json(_state().to_json().replace('"up"', '"stopping"'))
    state.save(tmp_path, stopping)
    assert state.load(tmp_path).phase is Phase.STOPPING
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_load_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DevError, match="does not exist"):
        state.load(tmp_path / "missing")
    with pytest.raises(DevError, match="holds no dev cluster"):
        state.load(tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(DevError, match="is damaged"):
        state.load(tmp_path)
