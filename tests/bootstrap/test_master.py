"""enable-master's logic with fakes: what it makes, that a second run changes nothing, undoing a failure.

The real thing (a master and agents in simulated boards) is in `test_enable.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pikube.bootstrap import record
from pikube.bootstrap.common import UserFile
from pikube.bootstrap.errors import BootstrapError, NotReady
from pikube.bootstrap.layout import AGENT_UNIT, MASTER_UNIT, Layout
from pikube.bootstrap.master import MasterSetup, enable_master, join_command
from pikube.bootstrap.record import Role
from tests.bootstrap.fakes import HASH, FakeBoard, FakeInit, fake_api, tree


def _setup(tmp_path: Path, **kw: object) -> MasterSetup:
    base = {"layout": Layout(config_dir=tmp_path / "etc", data_dir=tmp_path / "var"), "advertise_address": "10.0.0.1",
            "node_name": "pi-1", "pikube": ("/usr/bin/python3", "-m", "pikube"),
            "user_kubeconfig": UserFile(tmp_path / "home/.kube/config"), **kw}
    return MasterSetup(**base)  # type: ignore[arg-type]


def test_first_run_makes_everything_and_prints_the_join_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    setup = _setup(tmp_path, backend="vxlan")
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    out = enable_master(setup, init, board.hooks())
    lay = setup.layout
    assert init.calls == [f"install {MASTER_UNIT}", f"start {MASTER_UNIT}", f"install {AGENT_UNIT}",
                          f"start {AGENT_UNIT}"]
    assert out.token.startswith(f"pikube-{HASH}::") and lay.join_token.read_text() == out.token + "\n"
    assert out.join_command == f"sudo enable-worker 10.0.0.1 --token {out.token}"
    assert board.joined == [("https://10.0.0.1:6443", "pi-1")]  # the master board's own agent
    assert lay.admin_kubeconfig.read_bytes() == lay.master_kubeconfig.read_bytes()
    assert (tmp_path / "home/.kube/config").read_bytes() == lay.master_kubeconfig.read_bytes()
    for private in (lay.admin_kubeconfig, lay.join_token, tmp_path / "home/.kube/config"):
        assert os.stat(private).st_mode & 0o777 == 0o600
    agent = init.units[AGENT_UNIT]
    assert "--master-board" in agent and "--node-label pikube.io/network-backend=vxlan" in agent
    assert "--node-ip 10.0.0.1" in agent and "--backend vxlan" in agent
    assert "--board-node pi-1" in init.units[MASTER_UNIT]  # the master gives its board the master role
    rec = record.load(lay.record)
    assert rec is not None and (rec.role, rec.server, rec.backend) == (Role.MASTER, "https://10.0.0.1:6443", "vxlan")


def test_a_second_run_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    first = enable_master(setup, init, board.hooks())
    before, calls = tree(tmp_path), list(init.calls)
    again = enable_master(setup, init, board.hooks())
    assert again.changed == [] and len(again.existed) == 5
    assert again.token == first.token and again.join_command == first.join_command
    assert tree(tmp_path) == before and init.calls == calls and len(board.tokens) == 1
    assert board.preflight_cas == [None]  # all was running: no preflight the second time


def test_an_existing_users_kubeconfig_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    mine = tmp_path / "home/.kube/config"
    mine.parent.mkdir(parents=True)
    mine.write_text("my other cluster\n")
    setup = _setup(tmp_path)
    enable_master(setup, FakeInit(setup.layout), FakeBoard(setup.layout).hooks())
    assert mine.read_text() == "my other cluster\n"


def test_a_deleted_join_token_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    first = enable_master(setup, init, board.hooks())
    board.tokens.clear()  # `pikube token delete`
    again = enable_master(setup, init, board.hooks())
    assert again.changed == ["join token"] and again.token != first.token


def test_taint_master(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taints = fake_api(monkeypatch)
    setup = _setup(tmp_path, taint_master=True)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    enable_master(setup, init, board.hooks())
    assert taints == ["pi-1:node-role.kubernetes.io/master:NoSchedule"]
    assert enable_master(setup, init, board.hooks()).changed == []


def test_other_settings_on_a_set_up_board_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    enable_master(setup, init, board.hooks())
    with pytest.raises(BootstrapError, match="already the master with backend host-gw, not vxlan; changing it needs"):
        enable_master(_setup(tmp_path, backend="vxlan"), init, board.hooks())


def test_a_worker_board_cannot_become_master(tmp_path: Path) -> None:
    setup = _setup(tmp_path)
    record.save(setup.layout.record, record.NodeRecord(
        role=Role.WORKER, node_name="pi-1", server="https://10.0.0.9:6443", backend="host-gw",
        init=FakeInit(setup.layout).kind, data_dir=str(setup.layout.data_dir), docker_host="unix:///x"))
    with pytest.raises(BootstrapError, match=r"already a worker of the master at https://10\.0\.0\.9:6443"):
        enable_master(setup, FakeInit(setup.layout), FakeBoard(setup.layout).hooks())


def test_a_failed_first_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch, ready=lambda _n: False)
    setup = _setup(tmp_path, timeout=0.0)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    with pytest.raises(NotReady):
        enable_master(setup, init, board.hooks())
    assert init.units == {} and board.teardowns == 1
    assert not (tmp_path / "etc").exists() and not (tmp_path / "var").exists()
    assert not (tmp_path / "home/.kube/config").exists()


def test_join_command_names_a_port_only_when_it_is_not_the_default() -> None:
    assert join_command("pi-1.local", 6443, "T") == "sudo enable-worker pi-1.local --token T"
    assert join_command("10.0.0.1", 16443, "T") == "sudo enable-worker 10.0.0.1:16443 --token T"
