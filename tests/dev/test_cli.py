"""`pikube dev`: bad input gives one clear sentence and changes nothing; a full up/down leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from pikube.cli.main import run
from pikube.dev import boards, cluster, naming, state
from pikube.dev.errors import DevError
from pikube.dev.naming import RunId
from pikube.dev.state import EngineRecord, Phase, State
from tests.conftest import DevImages, HarnessMade

PIKUBE = Path(sys.executable).parent / "pikube"


def _one_sentence(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert run(argv) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pikube: ") and lines[0].endswith("."), err
    return lines[0]


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend to be root, for checks that must fail before anything is made."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def test_up_without_root(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    line = _one_sentence(capsys, ["dev", "up", "--state-dir", str(tmp_path / "s")])
    assert "needs root" in line
    assert not (tmp_path / "s").exists()


def test_up_on_an_occupied_state_dir(capsys: pytest.CaptureFixture[str], as_root: None, tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{}")
    line = _one_sentence(capsys, ["dev", "up", "--state-dir", str(tmp_path)])
    assert "already holds a dev cluster" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert (tmp_path / "state.json").read_text() == "{}"


def test_up_with_an_unreachable_docker_host(
    capsys: pytest.CaptureFixture[str], as_root: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    line = _one_sentence(capsys, ["dev", "up", "--state-dir", str(tmp_path / "s")])
    assert "no Docker engine answers at DOCKER_HOST=" in line
    assert not (tmp_path / "s").exists()


def test_up_with_a_bad_worker_count(capsys: pytest.CaptureFixture[str], as_root: None, tmp_path: Path) -> None:
    line = _one_sentence(capsys, ["dev", "up", "--workers", "-1", "--state-dir", str(tmp_path / "s")])
    assert "--workers must be between" in line
    assert not (tmp_path / "s").exists()


def test_down_and_ls_on_a_missing_state_dir(capsys: pytest.CaptureFixture[str], as_root: None, tmp_path: Path) -> None:
    for verb in ("down", "ls"):
        assert "does not exist" in _one_sentence(capsys, ["dev", verb, "--state-dir", str(tmp_path / "nope")])
    assert not (tmp_path / "nope").exists()


def test_down_on_an_empty_dir_has_nothing_to_do(
    capsys: pytest.CaptureFixture[str], as_root: None, tmp_path: Path
) -> None:
    assert run(["dev", "down", "--state-dir", str(tmp_path)]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def _fake_cluster(state_dir: Path) -> None:
    lan = boards.plan(RunId("fedcba"), naming.board_names(1), IPv4Network("10.250.250.0/24"))
    state.claim(state_dir, State(run=RunId("fedcba"), phase=Phase.UP, workers=1, engine=EngineRecord("x"), lan=lan))


def test_exec_on_an_unknown_board(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _fake_cluster(tmp_path)
    line = _one_sentence(capsys, ["dev", "exec", "worker-7", "--state-dir", str(tmp_path), "--", "true"])
    assert line == "pikube: there is no board named 'worker-7' in this dev cluster; its boards are master, worker-1."


def test_exec_without_a_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _fake_cluster(tmp_path)
    assert "give the command" in _one_sentence(capsys, ["dev", "exec", "master", "--state-dir", str(tmp_path)])


def test_ls_lists_boards_and_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _fake_cluster(tmp_path)
    assert run(["dev", "ls", "--names", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "master\nworker-1\n"
    assert run(["dev", "ls", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pikube-fedcba-worker-1" in out and "10.250.250.2" in out


def test_exec_arguments_split_at_the_double_dash() -> None:
    from pikube.cli.dev import split_exec_args

    assert split_exec_args(["--state-dir", "d", "--", "ip", "-br", "a"]) == (Path("d"), ["ip", "-br", "a"])
    assert split_exec_args(["--state-dir=d", "--", "--", "x"]) == (Path("d"), ["--", "x"])
    assert split_exec_args(["--", "sh", "-c", "exit 3"]) == (None, ["sh", "-c", "exit 3"])


# --- the real thing ------------------------------------------------------------------------


def _pikube(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PIKUBE), *args], capture_output=True, text=True, env=env, timeout=120)


def _env(docker_host: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    return env


@pytest.mark.integration
@pytest.mark.parametrize("engine_mode", ["external", "private"])
def test_up_ls_exec_down_leaves_nothing(
    engine_mode: str, docker_engine: Any, dev_images: DevImages, harness_made: HarnessMade, tmp_path: Path
) -> None:
    env = _env(docker_engine.host if engine_mode == "external" else None)
    state_dir = tmp_path / "cluster"
    up = _pikube("dev", "up", "--workers", "1", "--state-dir", str(state_dir), env=env)
    recorded = json.loads((state_dir / "state.json").read_text()) if (state_dir / "state.json").exists() else {}
    if recorded:
        harness_made.runs.add(recorded["run"])
        if recorded["engine"]["root"]:
            harness_made.engine_roots.add(Path(recorded["engine"]["root"]))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "The cluster is up: 2 boards" in up.stdout
        assert recorded["phase"] == "up"
        host = recorded["engine"]["host"]
        assert (state_dir / "env").read_text().splitlines()[1:] == [
            f"export DOCKER_HOST={host}", f"export KUBECONFIG={state_dir / 'kubeconfig'}"]
        assert [p["name"] for p in recorded["processes"]] == ["supervisor", "supervisor"]
        assert (engine_mode == "private") == (recorded["engine"]["root"] is not None)

        names = _pikube("dev", "ls", "--names", "--state-dir", str(state_dir), env=env)
        assert names.stdout == "master\nworker-1\n"
        master_address = recorded["lan"]["boards"][0]["address"]
        ping = _pikube("dev", "exec", "worker-1", "--state-dir", str(state_dir), "--",
                       "busybox", "ping", "-c1", "-W2", master_address, env=env)  # fmt: skip
        assert ping.returncode == 0, ping.stdout + ping.stderr
        code = _pikube("dev", "exec", "master", "--state-dir", str(state_dir), "--", "sh", "-c", "exit 3", env=env)
        assert code.returncode == 3

        # A container of the run (as an agent would make) goes with `dev down`.
        from pikube.dev.engine import Engine

        client = Engine(host=host).client()
        try:
            client.containers.run(dev_images.busybox, ["sleep", "300"], detach=True, network_mode="none",
                                  labels={naming.RUN_LABEL: recorded["run"]})  # fmt: skip
        finally:
            client.close()
    finally:
        down = _pikube("dev", "down", "--state-dir", str(state_dir), env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert cluster.leftovers(State.from_json(json.dumps(recorded))) == []
    assert sorted(p.name for p in state_dir.iterdir()) == []
    if engine_mode == "external":
        assert docker_engine.client().containers.list(all=True, filters={"label": naming.RUN_LABEL}) == []
    again = _pikube("dev", "down", "--state-dir", str(state_dir), env=env)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


@pytest.mark.integration
def test_launchers_start_processes_in_boards_and_a_failure_undoes_everything(
    docker_engine: Any, dev_images: DevImages, harness_made: HarnessMade, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake_master(up: cluster.Cluster, report: cluster.Report) -> None:
        harness_made.runs.add(up.state.run)
        seen["process"] = up.start_process("master", "sleeper", ["sleep", "300"])
        up.kubeconfig.write_text("apiVersion: v1\n")
        seen["state"] = up.state

    settings = cluster.DevSettings(state_dir=tmp_path, workers=1, docker_host=docker_engine.host)
    up = cluster.up(settings, launchers=[fake_master])
    try:
        assert f"export KUBECONFIG={tmp_path / 'kubeconfig'}" in (tmp_path / "env").read_text()
        assert state.load(tmp_path).processes == (seen["process"],)
        assert cluster.leftovers(up.state) != []
    finally:
        assert cluster.down(tmp_path)
    assert cluster.leftovers(seen["state"]) == []

    def broken(up: cluster.Cluster, report: cluster.Report) -> None:
        seen["state"] = up.state
        harness_made.runs.add(up.state.run)
        up.start_process("worker-1", "sleeper", ["sleep", "300"])
        raise DevError("the fake agent failed.")

    with pytest.raises(DevError, match="fake agent"):
        cluster.up(settings, launchers=[broken])
    assert cluster.leftovers(seen["state"]) == []
    assert list(tmp_path.iterdir()) == []
