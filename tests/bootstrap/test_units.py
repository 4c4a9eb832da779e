"""Unit files: what they say, that they read back as written, and that systemd accepts them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pikube.bootstrap.layout import Layout
from pikube.bootstrap.services import AgentFlags, agent_unit, master_unit
from pikube.bootstrap.units import Unit, exec_line, parse, render
from tests.conftest import require

PIKUBE = (sys.executable, "-m", "pikube")


def _units(tmp_path: Path) -> list[Unit]:
    lay = Layout(config_dir=tmp_path / "etc", data_dir=tmp_path / "var lib")
    flags = AgentFlags(server="https://192.168.1.10:6443", node_name="pi-1", docker_host="unix:///var/run/docker.sock",
                       backend="vxlan", master_board=True, node_ip="192.168.1.10")
    return [master_unit(PIKUBE, lay, "192.168.1.10", 6443, 8080, "pi-1"), agent_unit(PIKUBE, lay, flags)]


def test_units_survive_a_reboot_and_keep_python_small(tmp_path: Path) -> None:
    master, agent = (render(u) for u in _units(tmp_path))
    for text in (master, agent):
        assert "Restart=always\n" in text
        assert "Wants=network-online.target\n" in text
        assert "Environment=MALLOC_ARENA_MAX=2\n" in text
        assert "WantedBy=multi-user.target\n" in text
    assert "After=docker.service network-online.target pikube-master.service\n" in agent
    assert "After=network-online.target\n" in master  # the master runs no containers: no wait for Docker
    assert "--backend vxlan" in agent and "--master-board" in agent and "--pod-network bridge" in agent
    assert "--board-node pi-1" in master  # the master, not the board, gives it the master role
    assert "token" not in agent.lower()  # unit files are world-readable


def test_worker_agent_unit_has_the_worker_role_and_no_master_ordering(tmp_path: Path) -> None:
    flags = AgentFlags(server="https://m:6443", node_name="pi-2", docker_host="unix:///d.sock", backend="host-gw")
    text = render(agent_unit(PIKUBE, Layout(), flags))
    assert "--node-label pikube.io/board-role=worker" in text
    assert "pikube-master.service" not in text and "--master-board" not in text and "--node-ip" not in text
    assert "--backend host-gw" in text


@pytest.mark.parametrize("arg", ["plain", "with space", 'quote"d', "back\\slash", "100%", "$HOME", "a=b c", "'"])
def test_exec_start_reads_back_exactly(arg: str) -> None:
    unit = Unit(name="x.service", description="d", exec_start=("/bin/echo", arg, "--flag"),
                environment=(("MALLOC_ARENA_MAX", "2"), ("A", "b c")))
    back = parse("x.service", render(unit))
    assert back.exec_start == unit.exec_start
    assert back.environment == unit.environment
    assert (back.restart_sec, back.after) == (unit.restart_sec, unit.after)


def test_specifiers_and_variables_are_escaped() -> None:
    assert exec_line(["/bin/echo", "50%", "$X"]) == "/bin/echo 50%% $$X"


def test_a_unit_without_exec_start_is_refused() -> None:
    with pytest.raises(ValueError, match="no ExecStart"):
        parse("bad.service", "[Service]\nRestart=always\n")


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "needs systemd-analyze (Debian's systemd package)")
    assert analyze is not None
    for unit in _units(tmp_path):
        path = tmp_path / unit.name
        path.write_text(render(unit))
        proc = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, check=False)
        # A directive systemd does not know is only a warning (exit 0): any output counts as a failure.
        problems = [line for line in proc.stderr.splitlines()
                    if unit.name in line and "docker.service" not in line]
        assert proc.returncode == 0 and not problems, proc.stderr


def _examples() -> dict[str, str]:
    """The units `packaging/systemd/` shows, rendered now from the example boards its README names."""
    py = ("/usr/bin/python3", "-m", "pikube")
    server, address, docker = "https://192.168.1.10:6443", "192.168.1.10", "unix:///var/run/docker.sock"
    return {
        "master-board/pikube-master.service": render(master_unit(py, Layout(), address, 6443, 8080, "pi-1")),
        "master-board/pikube-agent.service": render(agent_unit(py, Layout(), AgentFlags(
            server=server, node_name="pi-1", docker_host=docker, backend="host-gw", master_board=True,
            node_ip=address))),
        "worker-board/pikube-agent.service": render(agent_unit(py, Layout(), AgentFlags(
            server=server, node_name="pi-2", docker_host=docker, backend="host-gw"))),
    }


def test_the_packaged_examples_are_what_enable_writes() -> None:
    packaged = Path(__file__).resolve().parents[2] / "packaging" / "systemd"
    for name, text in _examples().items():
        assert (packaged / name).read_text() == text, f"packaging/systemd/{name} is stale: render it again"
