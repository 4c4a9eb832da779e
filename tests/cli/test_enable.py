"""enable-master / enable-worker / disable / reset from the command line: refusals are one sentence each."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pikube.cli import main
from pikube.cli.main import run


def _one_line(capsys: pytest.CaptureFixture[str], argv: list[str], prog: str = "pikube") -> str:
    assert run(argv, prog=prog) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: ") and err.endswith("."), err
    return err


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


def test_not_root(capsys: pytest.CaptureFixture[str], not_root: None, tmp_path: Path) -> None:
    dirs = ["--config-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d")]
    assert _one_line(capsys, ["enable-worker", "10.0.0.1", "--token", "x", *dirs], "enable-worker") == (
        "enable-worker: enable-worker must run as root (it installs a system service): run it with sudo.")
    assert "must run as root" in _one_line(capsys, ["enable-master", *dirs], "enable-master")
    for verb in ("disable", "reset", "start"):
        assert f"pikube {verb} must run as root" in _one_line(capsys, [verb, "--config-dir", str(tmp_path / "c")])
    assert sorted(os.listdir(tmp_path)) == []


def test_malformed_token(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    line = _one_line(capsys, ["enable-worker", "10.0.0.1", "--token", "K10deadbeef::node:secret",
                              "--config-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d"),
                              "--init", "none"], "enable-worker")
    assert line.startswith("enable-worker: the join token is malformed: a join token starts with 'pikube-'")
    assert sorted(os.listdir(tmp_path)) == []


def test_a_bad_master_address(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    line = _one_line(capsys, ["enable-worker", "http://10.0.0.1", "--token", "x", "--config-dir", str(tmp_path),
                              "--init", "none"], "enable-worker")
    assert line == ("enable-worker: 'http://10.0.0.1' is not a master address: the master URL must use https, "
                    "not 'http': http://10.0.0.1.")


def test_reset_without_a_terminal_needs_yes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        line = _one_line(capsys, ["reset", "--config-dir", str(tmp_path), "--data-dir", str(tmp_path),
                                  "--init", "none"])
    assert line == "pikube: pikube reset deletes this board's cluster data; confirm with --yes."


def test_disable_on_a_board_never_set_up(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    teardowns: list[int] = []
    monkeypatch.setattr("pikube.cli.boardenv.remove_network", lambda *_a: teardowns.append(1))
    assert run(["disable", "--config-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d"),
                "--init", "none"]) == 0
    assert "nothing was set up on this board" in capsys.readouterr().out
    assert teardowns == []  # nothing set up: the network is not touched either


def test_the_console_scripts_are_the_subcommands(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["enable-worker", "--help"])
    with pytest.raises(SystemExit) as done:
        main.enable_worker()
    assert done.value.code == 0 and "--token" in capsys.readouterr().out


def test_a_bad_load_balancer_pool(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    dirs = ["--config-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d"), "--init", "none"]
    for bad, why in (("192.168.1.250-192.168.1.240", "comes before"), ("192.168.1.0/8", "larger than a /16"),
                     ("pool-a", "not an IPv4 range")):
        line = _one_line(capsys, ["enable-master", "--lb-pool", bad, *dirs], "enable-master")
        assert line.startswith(f'enable-master: --lb-pool: LoadBalancer pool "{bad}" is not an IPv4 range') \
            and why in line, line
    assert sorted(os.listdir(tmp_path)) == []


def test_the_pool_reaches_the_master_unit() -> None:
    from core.settings import parse_address_pool
    from pikube.bootstrap.layout import Layout
    from pikube.bootstrap.services import master_unit

    unit = master_unit(("pikube",), Layout(), "192.168.1.10", 6443, 8080, "pi-1",
                       ("192.168.1.240-192.168.1.242", "10.9.0.0/30"))
    argv = list(unit.exec_start)
    assert argv[argv.index("--lb-pool") + 1] == "192.168.1.240-192.168.1.242" and argv.count("--lb-pool") == 2
    assert [str(a) for a in parse_address_pool(["192.168.1.240-192.168.1.242", "10.9.0.0/30", "192.168.1.241"])] \
        == ["192.168.1.240", "192.168.1.241", "192.168.1.242", "10.9.0.1", "10.9.0.2"]
