"""`pikube token create|list|delete` on a master's data dir (no running master needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.jointoken import parse
from pikube.bootstrap import record
from pikube.bootstrap.init import InitKind
from pikube.bootstrap.layout import Layout
from pikube.bootstrap.record import NodeRecord, Role
from pikube.cli.main import run
from pikube.cli.token import parse_ttl


@pytest.fixture(params=["etcd", "sqlite"])
def master_board(tmp_path: Path, request: pytest.FixtureRequest) -> Layout:
    from master.pki import ensure_pki

    lay = Layout(config_dir=tmp_path / "etc", data_dir=tmp_path / "var")
    ensure_pki(lay.master_data, ["pi-1"], ["10.0.0.1"])
    record.save(lay.record, NodeRecord(role=Role.MASTER, node_name="pi-1", server="https://10.0.0.1:6443",
                                       backend="host-gw", init=InitKind.NONE, data_dir=str(lay.data_dir),
                                       docker_host="unix:///x", datastore=request.param))
    return lay


def test_create_list_delete(master_board: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    conf = ["--config-dir", str(master_board.config_dir)]
    assert run(["token", *conf, "create", "--ttl", "2h", "--description", "pi-5 and pi-6"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = parse(out[0])
    assert out[1].startswith("Join a board with (valid until ")
    assert out[2] == f"    sudo enable-worker 10.0.0.1 --token {out[0]}"
    assert run(["token", *conf, "create", "--ttl", "0"]) == 0
    second = parse(capsys.readouterr().out.splitlines()[0])
    assert run(["token", *conf, "create", "--ttl", "1h", "--master"]) == 0
    out = capsys.readouterr().out.splitlines()
    third = parse(out[0])
    if record.load(master_board.record).datastore == "etcd":  # type: ignore[union-attr]
        assert out[-2:] == ["Add a master (this cluster keeps its state in etcd) with:",
                            f"    sudo enable-master --join https://10.0.0.1:6443 --token {out[0]}"]
    else:
        assert out[-1] == ("This master keeps the cluster in SQLite, so it cannot take more masters "
                           "(a cluster of several starts with `enable-master --cluster-init`).")

    assert run(["token", *conf, "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["ID", "JOINS", "CREATED", "EXPIRES", "DESCRIPTION"]
    assert rows[1].startswith(token.token_id) and rows[1].endswith("pi-5 and pi-6")
    assert rows[1].split()[1] == "workers"
    assert rows[2].startswith(second.token_id) and " never " in rows[2]
    assert rows[3].startswith(third.token_id) and rows[3].split()[1] == "workers,masters"
    assert token.secret not in "\n".join(rows)  # secrets are never shown again

    assert run(["token", *conf, "delete", token.token_id]) == 0
    assert "no longer join" in capsys.readouterr().out
    assert run(["token", *conf, "delete", token.token_id]) == 1
    assert re.search(r"there is no token with id '\w+'; `pikube token list` shows them\.",
                     capsys.readouterr().err)


def test_on_a_board_that_is_not_a_master(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["token", "--config-dir", str(tmp_path), "--data-dir", str(tmp_path), "list"]) == 1
    assert "this board is not a master" in capsys.readouterr().err


def test_a_bad_ttl(master_board: Layout, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["token", "--config-dir", str(master_board.config_dir), "create", "--ttl", "soon"]) == 1
    assert capsys.readouterr().err.strip() == (
        "pikube: --ttl takes a duration such as 30m, 24h or 7d (or 0 for none), not 'soon'.")


def test_durations() -> None:
    assert parse_ttl("30m") == 1800 and parse_ttl("24h") == 86400 and parse_ttl("7d") == 7 * 86400
    assert parse_ttl("90") == 90 and parse_ttl("0") is None and parse_ttl("never") is None
    for bad in ("-1h", "1w", "", "0h"):
        with pytest.raises(ValueError):
            parse_ttl(bad)
