"""Driving systemd (with a fake systemctl), and the file names the bootstrap shares with the agent."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pikube.bootstrap.init import InitError, Systemd
from pikube.bootstrap.layout import Layout
from pikube.bootstrap.units import Unit, render


class FakeSystemctl:
    def __init__(self, fail: str = "") -> None:
        self.calls: list[str] = []
        self.fail = fail
        self.active: set[str] = set()

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        line = " ".join(argv)
        self.calls.append(line)
        if self.fail and self.fail in line:
            return 1, "Failed to start x.service: Unit x.service has a bad setting."
        if argv[1] == "is-active":
            return (0 if argv[-1] in self.active else 3), ""
        if argv[1] in ("start", "restart") or (argv[1] == "enable" and "--now" in argv):
            self.active.add(argv[-1])
        return 0, ""


UNIT = Unit(name="x.service", description="x", exec_start=("/bin/true",))


def test_install_start_uninstall(tmp_path: Path) -> None:
    ctl = FakeSystemctl()
    init = Systemd(tmp_path, run=ctl)
    assert init.install(UNIT) is True
    assert (tmp_path / "x.service").read_text() == render(UNIT)
    assert (tmp_path / "x.service").stat().st_mode & 0o777 == 0o644
    assert init.install(UNIT) is False  # unchanged: no daemon-reload either
    init.start("x.service")
    assert init.active("x.service")
    init.start("x.service", restart=True)
    init.uninstall("x.service")
    assert not (tmp_path / "x.service").exists()
    # One reload per changed file; enabling does not reload again, and enables and starts in one call.
    assert ctl.calls == ["systemctl daemon-reload", "systemctl enable --no-reload --now x.service",
                         "systemctl is-active --quiet x.service", "systemctl enable --no-reload x.service",
                         "systemctl restart x.service", "systemctl disable --now x.service",
                         "systemctl daemon-reload"]
    assert init.log_hint("x.service") == "journalctl -u x.service"


def test_a_refusal_says_what_systemctl_said(tmp_path: Path) -> None:
    init = Systemd(tmp_path, run=FakeSystemctl(fail="enable"))
    init.install(UNIT)
    with pytest.raises(InitError, match=r"systemctl enable --no-reload --now x\.service failed: Failed to "):
        init.start("x.service")


def test_the_node_credentials_are_where_the_agent_keeps_them() -> None:
    from agent.credentials import KUBECONFIG_NAME, ca_path

    lay = Layout(data_dir=Path("/d"))
    assert lay.node_kubeconfig == lay.agent_data / KUBECONFIG_NAME
    assert lay.agent_ca == ca_path(lay.agent_data)
