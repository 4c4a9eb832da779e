"""`pikube agent`: flags become AgentSettings; a board without credentials or with a bad token is told why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pikube.cli.agent import settings_from
from pikube.cli.main import CliError, build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_flags_become_settings(tmp_path: Path) -> None:
    args = build_parser().parse_args(["agent", "--server", "https://10.0.0.1:6443", "--node-name", "pi-2",
                                      "--data-dir", str(tmp_path), "--master-board", "--node-label", "zone=a",
                                      "--log-port", "10251", "--pod-network", "bridge"])
    s = settings_from(args)
    assert (s.server, s.node_name, s.data_dir, s.master_board) == ("https://10.0.0.1:6443", "pi-2", tmp_path, True)
    assert s.node_labels == (("zone", "a"),) and s.log_port == 10251 and s.pod_network == "bridge"
    assert s.docker_host == "unix:///var/run/docker.sock" and s.token == ""
    assert s.backend == "host-gw"


def test_backend_flag() -> None:
    args = build_parser().parse_args(["agent", "--server", "https://m", "--node-name", "n", "--pod-network", "bridge",
                                      "--backend", "vxlan"])
    assert settings_from(args).backend == "vxlan"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["agent", "--server", "https://m", "--node-name", "n", "--backend", "flannel"])


def test_bad_flags_are_refused(tmp_path: Path) -> None:
    args = build_parser().parse_args(["agent", "--server", "https://m", "--node-name", "n", "--node-label", "oops"])
    with pytest.raises(CliError, match="KEY=VALUE"):
        settings_from(args)


def _agent(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pikube.cli", "agent", *argv], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_without_credentials_or_token_it_says_what_to_do(tmp_path: Path) -> None:
    proc = _agent("--server", "https://127.0.0.1:1", "--node-name", "n", "--data-dir", str(tmp_path))
    assert proc.returncode == 1
    assert "give --token to join the cluster" in proc.stderr


def test_a_malformed_token_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    proc = _agent("--server", "https://127.0.0.1:1", "--node-name", "n", "--data-dir", str(tmp_path),
                  "--token", "K10abc::secret")
    assert proc.returncode == 1
    assert "join token is malformed" in proc.stderr
    assert not (tmp_path / "kubelet.kubeconfig").exists()


def test_stream_flags() -> None:
    from pikube.cli.agent import go_duration

    base = ["agent", "--server", "https://m", "--node-name", "n"]
    s = settings_from(build_parser().parse_args(base))
    assert (s.streaming_idle_timeout_seconds, s.max_streams) == (4 * 3600.0, 32)
    s = settings_from(build_parser().parse_args([*base, "--streaming-connection-idle-timeout", "1h30m0s",
                                                 "--max-streams", "5"]))
    assert (s.streaming_idle_timeout_seconds, s.max_streams) == (5400.0, 5)
    assert [go_duration(t) for t in ("4h0m0s", "30m", "90s", "1.5h", "250ms", "12", "4x", "h", "")] == \
        [14400.0, 1800.0, 90.0, 5400.0, 0.25, 12.0, None, None, None]
    for bad in (["--streaming-connection-idle-timeout", "soon"], ["--streaming-connection-idle-timeout", "0s"],
                ["--max-streams", "0"]):
        with pytest.raises(CliError):
            settings_from(build_parser().parse_args([*base, *bad]))
