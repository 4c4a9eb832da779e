"""The Docker engine: clear errors (unit) and a private dockerd that stops without a trace."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pikube.dev import engine
from pikube.dev.errors import DevError
from tests.conftest import HarnessMade, require


def test_unreachable_docker_host_is_one_clear_sentence(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(DevError) as err:
        engine.connect(host, timeout=2)
    message = str(err.value)
    assert message.startswith(f"no Docker engine answers at DOCKER_HOST={host};")
    assert message.endswith(".") and "\n" not in message


def test_private_engine_flags_keep_networking_ours(tmp_path: Path) -> None:
    argv = engine.dockerd_argv(tmp_path)
    for flag in ("--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false"):
        assert flag in argv
    assert argv[argv.index("--data-root") + 1] == str(tmp_path / "data")
    assert argv[argv.index("--pidfile") + 1] == str(tmp_path / "dockerd.pid")
    assert argv[argv.index("--exec-root") + 1] == str(engine.exec_root(tmp_path))
    assert argv[argv.index("--host") + 1] == f"unix://{engine.socket_path(tmp_path)}"


def test_cannot_start_without_dockerd(tmp_path: Path) -> None:
    with pytest.raises(DevError, match="dockerd is not installed"):
        engine.check_can_start(tmp_path, dockerd="no-such-dockerd-here")


def test_sockets_of_a_deep_state_dir_move_to_a_short_runtime_dir() -> None:
    short, deep = Path("/tmp/e"), Path("/tmp/" + "x" * 100)
    assert engine.socket_path(short) == short / "docker.sock"
    assert engine.exec_root(short) == short / "exec"
    assert engine.exec_root(deep).parent == engine.socket_path(deep).parent == engine.runtime_dir(deep)
    assert engine.runtime_dir(deep) != engine.runtime_dir(short)
    assert len(str(engine.exec_root(deep) / "containerd/containerd.sock.ttrpc")) <= 100


@pytest.mark.integration
def test_session_engine_answers(docker_client: Any) -> None:
    assert docker_client.ping()


@pytest.mark.integration
def test_private_engine_stops_without_leaving_processes_or_mounts(
    tmp_path_factory: pytest.TempPathFactory, harness_made: HarnessMade, docker_engine: Any
) -> None:
    require(shutil.which("dockerd") is not None, "needs Debian's docker.io (dockerd)")
    root = tmp_path_factory.mktemp("engine-stop")
    harness_made.engine_roots.add(root)
    started = engine.start(root)
    try:
        assert started.started and started.pid is not None
        client = started.client()
        try:
            assert client.ping()
        finally:
            client.close()
        assert started.pid in engine.leftover_processes(root)
    finally:
        engine.stop(started)
    assert engine.leftover_processes(root) == []
    assert engine.leftover_mounts(root) == []
    engine.stop(started)  # a second stop is harmless
    engine.remove_files(root)
    assert not root.exists()
