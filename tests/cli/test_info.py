"""`pikube info`: a faked Pi 4 shown as kube-config info showed it; the real command on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import __version__
from pikube.bootstrap import record, status
from pikube.bootstrap.init import InitKind
from pikube.bootstrap.layout import Layout
from pikube.bootstrap.record import NodeRecord, Role
from pikube.cli.board import board_info
from pikube.cli.main import run
from pikube.doctor import info
from tests.bootstrap.fakes import FakeInit
from tests.core.fakepi import PI4_COMMANDS, FakePi


def agent_pi(files: dict[str, str], throttled: str | None) -> FakePi:
    """A Pi 4 whose firmware reports `throttled` (no vcgencmd when None)."""
    commands = dict(PI4_COMMANDS)
    if throttled is None:
        del commands["vcgencmd get_throttled"]
    else:
        commands["vcgencmd get_throttled"] = (0, throttled)
    return FakePi(files=files, commands=commands)


def test_a_pi_4_at_a_glance(tmp_path: Path) -> None:
    pi = agent_pi(FakePi().files, "throttled=0x50005\n")
    rows = dict(info.render(board_info(pi, tmp_path / "not/yet", (True, "20.10.24+dfsg1"), "unix:///d.sock")))
    assert rows["board"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert rows["arch"] == "arm64 (aarch64)"
    assert rows["kernel"] == "6.6.31+rpt-rpi-v8" and rows["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert rows["cpus"] == "4"
    assert rows["memory"] == "920 MiB used of 3.7 GiB"
    assert rows["disk"] == f"9.0 GiB used, 20.0 GiB free (filesystem of {tmp_path})"
    assert rows["temperature"] == "48.3 °C — now: under-voltage, throttled"
    assert rows["pikube"] == __version__ and rows["docker"] == "20.10.24+dfsg1"


def test_a_board_without_pi_parts_or_docker(tmp_path: Path) -> None:
    files = dict(FakePi().files)
    del files["/proc/device-tree/model"], files["/sys/class/thermal/thermal_zone0/temp"]
    rows = dict(info.render(board_info(agent_pi(files, None), tmp_path, (False, "connection refused"),
                                       "unix:///x.sock")))
    assert rows["board"].startswith("not a Raspberry Pi")
    assert rows["temperature"] == "unknown (no thermal zone)"
    assert rows["docker"] == "not answering at unix:///x.sock (connection refused)"


def test_role_and_services_from_the_record(tmp_path: Path) -> None:
    lay = Layout(config_dir=tmp_path)
    init = FakeInit(lay)
    assert status.role(None).startswith("none (run `sudo enable-master`")
    assert status.services(None, init) == ("pikube-master.service not installed, "
                                           "pikube-agent.service not installed")
    rec = NodeRecord(role=Role.WORKER, node_name="pi-2", server="https://10.0.0.1:6443", backend="vxlan",
                     init=InitKind.SYSTEMD, data_dir="/var/lib/pikube", docker_host="unix:///var/run/docker.sock")
    record.save(lay.record, rec)
    assert record.load(lay.record) == rec
    assert status.role(rec) == "worker (node pi-2, master https://10.0.0.1:6443, backend vxlan, init systemd)"
    init.running.add("pikube-agent.service")
    assert status.services(rec, init) == "pikube-agent.service running"
    assert status.cluster(lay, rec).startswith("no credentials to ask the master with")


def test_the_command_on_this_machine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(["info", "--config-dir", str(tmp_path), "--data-dir", str(tmp_path),
                "--docker-host", f"unix://{tmp_path}/none.sock"]) == 0
    out = capsys.readouterr().out
    labels = [line.split(":")[0] for line in out.splitlines()]
    assert labels == ["board", "arch", "os", "kernel", "cpus", "memory", "disk", "temperature", "pikube", "docker",
                      "python", "role", "services", "cluster"]
    assert "cluster:     not part of a cluster" in out


def test_a_damaged_record_is_one_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "node.json").write_text("{")
    assert run(["info", "--config-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pikube: {tmp_path}/node.json is damaged (") and err.endswith("to start over.")
