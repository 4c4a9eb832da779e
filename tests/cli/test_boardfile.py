"""/etc/pikube/config.yaml under flags and PIKUBE_*: each value comes from the highest layer that gives it."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pikube.cli import boardfile
from pikube.cli.agent import settings_from
from pikube.cli.main import CliError, build_parser, run

TOKEN_FILE = f"pikube-{'a' * 64}::aaaaaa.aaaaaaaaaaaaaaaa"
TOKEN_ENV = f"pikube-{'b' * 64}::bbbbbb.bbbbbbbbbbbbbbbb"
TOKEN_FLAG = f"pikube-{'c' * 64}::cccccc.cccccccccccccccc"


@pytest.fixture(autouse=True)
def no_pikube_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PIKUBE_"):
            monkeypatch.delenv(name)


def write_config(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(text)
    return path


WORKER_FILE = f"role: worker\nhostname: pi-file\nmaster: 10.0.0.1\ntoken: {TOKEN_FILE}\n"


# -- the layers themselves -----------------------------------------------------------------------

def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = write_config(tmp_path, WORKER_FILE)
    layers = boardfile.load(None, path, env={"PIKUBE_MASTER": "10.0.0.2"})
    assert layers.master("10.0.0.3") == "10.0.0.3"
    assert layers.master("") == "10.0.0.2"
    assert layers.token("") == TOKEN_FILE
    assert layers.node_name("", "from-hostname") == "pi-file"
    assert boardfile.load(None, tmp_path / "absent.yaml", env={}).node_name("", "from-hostname") == "from-hostname"
    assert layers.pick("", "PIKUBE_NODE_NAME", None, "d") == "d"


def test_an_empty_environment_variable_does_not_hide_the_file(tmp_path: Path) -> None:
    layers = boardfile.load(None, write_config(tmp_path, WORKER_FILE), env={"PIKUBE_MASTER": " "})
    assert layers.master("") == "10.0.0.1"


def test_the_file_can_be_named_by_flag_or_environment(tmp_path: Path) -> None:
    other = write_config(tmp_path / "other", "hostname: pi-other\n")
    default = write_config(tmp_path, "hostname: pi-default\n")
    assert boardfile.load(None, default, env={}).file.hostname == "pi-default"
    assert boardfile.load(None, default, env={"PIKUBE_CONFIG": str(other)}).file.hostname == "pi-other"
    flagged = write_config(tmp_path / "flagged", "hostname: pi-flag\n")
    assert boardfile.load(flagged, default, env={"PIKUBE_CONFIG": str(other)}).file.hostname == "pi-flag"
    with pytest.raises(boardfile.BoardFileError, match="does not exist"):
        boardfile.load(tmp_path / "missing.yaml", default, env={})


def test_an_invalid_file_is_an_error_naming_every_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path, "hostname: Pi 1\nmaster: [x]\n")
    with pytest.raises(boardfile.BoardFileError) as info:
        boardfile.load(None, path, env={})
    message = str(info.value)
    assert message.startswith(f"{path} is not valid: ")
    assert "hostname: " in message and "master: expected text" in message and "\n" not in message


def test_a_worker_file_without_its_token_is_fine(tmp_path: Path) -> None:
    layers = boardfile.load(None, write_config(tmp_path, "role: worker\nmaster: pi-1\n"), env={})
    assert layers.token("") == "" and layers.master("") == "pi-1"


# -- pikube agent ---------------------------------------------------------------------------------

def agent_args(*argv: str) -> Any:
    return build_parser().parse_args(["agent", *argv])


def test_agent_takes_what_its_flags_leave_open_from_env_then_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, WORKER_FILE)
    s = settings_from(agent_args("--config", str(config)), env={})
    assert (s.server, s.node_name, s.token) == ("https://10.0.0.1:6443", "pi-file", TOKEN_FILE)
    env = {"PIKUBE_MASTER": "pi-9:7443", "PIKUBE_TOKEN": TOKEN_ENV, "PIKUBE_NODE_NAME": "pi-env"}
    s = settings_from(agent_args("--config", str(config)), env=env)
    assert (s.server, s.node_name, s.token) == ("https://pi-9:7443", "pi-env", TOKEN_ENV)
    s = settings_from(agent_args("--config", str(config), "--server", "https://10.9.9.9:6443", "--node-name",
                                 "pi-flag", "--token", TOKEN_FLAG), env=env)
    assert (s.server, s.node_name, s.token) == ("https://10.9.9.9:6443", "pi-flag", TOKEN_FLAG)


def test_agent_without_any_master_says_where_to_give_it(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"give the master with --server .* PIKUBE_MASTER"):
        settings_from(agent_args("--config", str(write_config(tmp_path, "hostname: pi-1\n"))), env={})


def test_agent_with_every_flag_keeps_running_despite_a_broken_file(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    broken = write_config(tmp_path, "hostname: [\n")
    s = settings_from(agent_args("--config", str(broken), "--server", "https://m:6443", "--node-name", "n"), env={})
    assert (s.server, s.node_name) == ("https://m:6443", "n")
    assert "ignoring the configuration file" in capsys.readouterr().err
    with pytest.raises(CliError, match="not valid YAML"):
        settings_from(agent_args("--config", str(broken), "--node-name", "n"), env={})


# -- enable-worker / enable-master -----------------------------------------------------------------

@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def capture(monkeypatch: pytest.MonkeyPatch, target: str, result: Any) -> list[Any]:
    seen: list[Any] = []

    def fake(setup: Any, *_rest: Any) -> Any:
        seen.append(setup)
        return result

    monkeypatch.setattr(target, fake)
    return seen


def worker(tmp_path: Path, *argv: str) -> int:
    return run(["enable-worker", *argv, "--config-dir", str(tmp_path / "etc"), "--data-dir", str(tmp_path / "var"),
                "--init", "none"], prog="enable-worker")


def test_enable_worker_reads_master_token_and_name_from_the_file(tmp_path: Path, root: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path / "etc", WORKER_FILE)
    joined = SimpleNamespace(changed=True, node_name="x", server="s", backend="host-gw")
    seen = capture(monkeypatch, "pikube.bootstrap.worker.enable_worker", joined)
    assert worker(tmp_path) == 0
    assert (seen[0].master, seen[0].token, seen[0].node_name) == ("10.0.0.1", TOKEN_FILE, "pi-file")
    monkeypatch.setenv("PIKUBE_TOKEN", TOKEN_ENV)
    assert worker(tmp_path, "10.0.0.5", "--node-name", "pi-flag") == 0
    assert (seen[1].master, seen[1].token, seen[1].node_name) == ("10.0.0.5", TOKEN_ENV, "pi-flag")


def test_enable_worker_without_master_or_token_says_where_to_give_them(
        tmp_path: Path, root: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert worker(tmp_path) == 1
    assert "give the master's address: enable-worker MASTER --token TOKEN (or set PIKUBE_MASTER)" in \
        capsys.readouterr().err
    write_config(tmp_path / "etc", "role: worker\nmaster: pi-1\n")
    assert worker(tmp_path) == 1
    assert "--token TOKEN (or set PIKUBE_TOKEN, or token: in" in capsys.readouterr().err


def test_a_file_naming_another_role_stops_the_command(tmp_path: Path, root: None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path / "etc", "role: master\n")
    assert worker(tmp_path, "10.0.0.1", "--token", TOKEN_FLAG) == 1
    err = capsys.readouterr().err
    assert "says role: master, but enable-worker makes this board a worker" in err
    assert not (tmp_path / "var").exists()


def test_enable_master_takes_its_node_name_from_the_file(tmp_path: Path, root: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path / "etc", "role: master\nhostname: pi-boss\n")
    out = SimpleNamespace(changed=True, seconds=1.0, join_command="enable-worker ...")
    seen = capture(monkeypatch, "pikube.bootstrap.master.enable_master", out)
    argv = ["enable-master", "--config-dir", str(tmp_path / "etc"), "--data-dir", str(tmp_path / "var"),
            "--init", "none", "--advertise-address", "10.0.0.1", "--user-kubeconfig", str(tmp_path / "kc")]
    assert run(argv, prog="enable-master") == 0
    assert seen[0].node_name == "pi-boss"
    monkeypatch.setenv("PIKUBE_NODE_NAME", "pi-env")
    assert run(argv, prog="enable-master") == 0
    assert seen[1].node_name == "pi-env"
    assert run([*argv, "--node-name", "pi-flag"], prog="enable-master") == 0
    assert seen[2].node_name == "pi-flag"
