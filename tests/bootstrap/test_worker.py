"""enable-worker's logic with fakes: the order of its checks, its errors, and nothing left after a failure.

The same errors against a real master are in `test_enable.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core import errors, jointoken
from pikube.bootstrap import record
from pikube.bootstrap.errors import BootstrapError, JoinRefused, NotReady, NotRoot, PreflightFailed
from pikube.bootstrap.layout import AGENT_UNIT, Layout
from pikube.bootstrap.record import Role
from pikube.bootstrap.worker import WorkerSetup, enable_worker
from tests.bootstrap.fakes import PEM, TOKEN, FakeBoard, FakeInit, fake_api

PIKUBE = ("/usr/bin/python3", "-m", "pikube")


def _setup(tmp_path: Path, **kw: object) -> WorkerSetup:
    base = {"layout": Layout(config_dir=tmp_path / "etc", data_dir=tmp_path / "var"), "master": "10.0.0.1",
            "token": TOKEN, "node_name": "pi-2", "pikube": PIKUBE, "is_root": True, **kw}
    return WorkerSetup(**base)  # type: ignore[arg-type]


def _pinned(ca: bytes = PEM) -> Callable[[str, str], bytes]:
    return lambda _server, _hash: ca


def _nothing_left(tmp_path: Path, init: FakeInit) -> None:
    assert not (tmp_path / "etc").exists() and not (tmp_path / "var").exists()
    assert init.units == {} and init.running == set()


def test_joins_with_the_clusters_backend_and_records_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch, backend="vxlan")
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    joined = enable_worker(setup, init, board.hooks(), pin=_pinned())
    assert (joined.node_name, joined.server, joined.backend, joined.changed) == (
        "pi-2", "https://10.0.0.1:6443", "vxlan", True)
    assert board.joined == [("https://10.0.0.1:6443", "pi-2")]
    assert board.preflight_cas == [None, PEM]  # before anything, then the clock against the pinned CA
    assert "--backend vxlan" in init.units[AGENT_UNIT]
    rec = record.load(setup.layout.record)
    assert rec is not None and (rec.role, rec.backend, rec.server) == (Role.WORKER, "vxlan", joined.server)

    again = enable_worker(setup, init, board.hooks(), pin=_pinned())
    assert again.changed is False and board.joined == [("https://10.0.0.1:6443", "pi-2")]
    assert "nothing changed" in board.said[-1]


def test_not_root_is_refused_first(tmp_path: Path) -> None:
    setup = _setup(tmp_path, is_root=False, token="garbage")
    init = FakeInit(setup.layout)
    with pytest.raises(NotRoot, match="must run as root"):
        enable_worker(setup, init, FakeBoard(setup.layout).hooks(), pin=_pinned())
    _nothing_left(tmp_path, init)


def test_a_malformed_token_is_refused_before_the_network(tmp_path: Path) -> None:
    setup = _setup(tmp_path, token="K10abc::secret")
    init = FakeInit(setup.layout)

    def pin(_s: str, _h: str) -> bytes:
        raise AssertionError("must not contact the master")

    with pytest.raises(JoinRefused, match="the join token is malformed: a join token starts with 'pikube-'"):
        enable_worker(setup, init, FakeBoard(setup.layout).hooks(), pin=pin)
    _nothing_left(tmp_path, init)


def test_preflight_failures_stop_it_before_the_master_is_asked(tmp_path: Path) -> None:
    setup = _setup(tmp_path)
    init = FakeInit(setup.layout)
    board = FakeBoard(setup.layout, problems=["memory-cgroup: the memory cgroup is off"])
    with pytest.raises(PreflightFailed, match=r"not ready for pikube: memory-cgroup: .*pikube doctor --fix"):
        enable_worker(setup, init, board.hooks(), pin=_pinned())
    assert board.joined == []
    _nothing_left(tmp_path, init)


def _unreachable() -> Exception:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError as cause:
        exc = jointoken.MasterUnreachable("cannot reach the master at 10.0.0.1:6443: [Errno 111]")
        exc.__cause__ = cause
        return exc


@pytest.mark.parametrize(("where", "exc", "message"), [
    ("pin", _unreachable(),
     "cannot reach a pikube master at 10.0.0.1:6443 (Connection refused): check the address, and that "
     "enable-master has run on that board."),
    ("pin", jointoken.CaMismatch("the master at 10.0.0.1:6443 has CA sha256 ..."),
     "the master at 10.0.0.1:6443 is not the cluster this token was made for (its CA does not match the hash in "
     "the token, so no secret was sent): check the address and the token."),
    ("join", errors.Unauthorized(message="the join token is invalid or has expired"),
     "the master at 10.0.0.1:6443 refused the join token (wrong, expired or deleted): make a new one on the "
     "master with `sudo pikube token create`."),
    ("join", errors.Conflict(message='node name "pi-2" is already in use by a Ready node'),
     "the node name 'pi-2' is already used by a Ready board of this cluster: choose another with --node-name, or "
     "remove that node first (`kubectl delete node pi-2`)."),
])
def test_each_join_failure_has_its_own_sentence_and_leaves_nothing(
        tmp_path: Path, where: str, exc: Exception, message: str) -> None:
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)

    def pin(_s: str, _h: str) -> bytes:
        raise exc

    if where == "join":
        board.join_error = exc
    with pytest.raises(JoinRefused) as caught:
        enable_worker(setup, init, board.hooks(), pin=pin if where == "pin" else _pinned())
    assert str(caught.value) == message
    _nothing_left(tmp_path, init)


def test_a_node_that_never_gets_ready_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch, ready=lambda _n: False)
    setup = _setup(tmp_path, timeout=0.0)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    with pytest.raises(NotReady, match=r"node pi-2 did not become Ready within 0 s; see the agent's log \(`log of"):
        enable_worker(setup, init, board.hooks(), pin=_pinned())
    assert init.calls == [f"install {AGENT_UNIT}", f"start {AGENT_UNIT}", f"uninstall {AGENT_UNIT}"]
    assert board.teardowns == 1
    _nothing_left(tmp_path, init)


def test_a_board_of_another_cluster_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    enable_worker(setup, init, board.hooks(), pin=_pinned())
    with pytest.raises(BootstrapError, match=r"already joined the master at https://10.0.0.1:6443 as pi-2; run "
                                             r"`sudo pikube reset` first"):
        enable_worker(_setup(tmp_path, master="10.0.0.9"), init, board.hooks(), pin=_pinned())


def test_a_disabled_board_comes_back_with_its_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_api(monkeypatch)
    setup = _setup(tmp_path)
    init, board = FakeInit(setup.layout), FakeBoard(setup.layout)
    enable_worker(setup, init, board.hooks(), pin=_pinned())
    init.uninstall(AGENT_UNIT)  # what `pikube disable` does to the services

    def pin(_s: str, _h: str) -> bytes:
        raise AssertionError("credentials exist: no new join")

    joined = enable_worker(setup, init, board.hooks(), pin=pin)
    assert joined.changed and init.active(AGENT_UNIT) and len(board.joined) == 1
