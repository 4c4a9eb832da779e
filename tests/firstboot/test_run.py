"""The first-boot driver: once per pikube.yaml, every step recorded, secrets off the card, bad files applied never."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import boardconfig, firstboot
from core.boardconfig import BoardConfig
from pikube.cli.main import run as cli_run
from pikube.firstboot import run
from pikube.firstboot.host import Completed, Host
from pikube.firstboot.step import Outcome, Step, StepError, changed, skipped
from tests.firstboot.fakes import ED25519, TOKEN, FakeRunner, make_host, make_root

WORKER_YAML = f"""# my worker
hostname: pi-2
role: worker
master: 10.0.0.1
token: {TOKEN}
ssh:
  authorized_keys:
    - {ED25519}
wifi:
  ssid: home
  passphrase: correct horse battery
  country: GB
timezone: Europe/London
"""


class Recorder:
    """Fake growfs and role steps: note each call (and whether systemd was told READY by then)."""

    def __init__(self, ready: list[str]) -> None:
        self.ready = ready
        self.calls: list[str] = []
        self.fail_role: str | None = None

    def growfs(self, host: Host, cfg: BoardConfig) -> Outcome:
        if not host.live:  # as the real step
            return skipped("not the running system's root")
        self.calls.append("growfs")
        return changed(True, "grown", "")

    def role(self, host: Host, cfg: BoardConfig) -> Outcome:
        self.calls.append(f"role {cfg.role} ready={bool(self.ready)} token={cfg.token is not None}")
        if self.fail_role:
            raise StepError(self.fail_role)
        return changed(True, f"{cfg.role} enabled", "")


class Board:
    def __init__(self, tmp_path: Path) -> None:
        self.root = make_root(tmp_path / "root")
        self.host, self.runner, self.lines, _ = make_host(self.root, live=True)
        self.ready: list[str] = []
        self.fake = Recorder(self.ready)

    @property
    def fat(self) -> Path:
        return self.root / "boot/firmware/pikube.yaml"

    @property
    def state(self) -> Path:
        return self.root / "var/lib/pikube/firstboot.json"

    def steps(self) -> list[tuple[str, Step]]:
        fakes: dict[str, Step] = {"growfs": self.fake.growfs, "role": self.fake.role}
        return [(name, fakes.get(name, step)) for name, step in run.default_steps()]

    def boot(self) -> int:
        self.lines.clear()
        return run.FirstBoot(self.host, self.steps(), ready=lambda: self.ready.append("READY")).run()

    def record(self) -> firstboot.Record:
        rec = firstboot.load(self.state)
        assert rec is not None
        return rec


@pytest.fixture
def board(tmp_path: Path) -> Board:
    return Board(tmp_path)


def test_a_worker_card_is_applied_once_and_its_secrets_leave_the_card(board: Board) -> None:
    board.fat.write_text(WORKER_YAML)
    assert board.boot() == 0
    rec = board.record()
    assert rec.result == firstboot.APPLIED and rec.problems == ()
    assert [(s.name, s.status) for s in rec.steps] == [
        ("growfs", "done"), ("hostname", "done"), ("timezone", "done"), ("user", "done"), ("ssh", "done"),
        ("wifi", "done"), ("network", "done"), ("config", "done"), ("role", "done")]
    assert board.fake.calls == ["growfs", "role worker ready=True token=True"]
    assert board.ready == ["READY"]
    # one line per step in the journal
    assert [ln.split(":")[1].strip() for ln in board.lines[1:-2]] == [s.name for s in rec.steps]
    assert board.lines[-2] == "pikube firstboot: removed the applied secrets from /boot/firmware/pikube.yaml"
    assert board.lines[0].startswith("pikube firstboot: applying /boot/firmware/pikube.yaml")
    # the applied secrets are gone from the card, the rest is kept; /etc has it all without secrets
    left = board.fat.read_text()
    assert TOKEN not in left and "correct horse" not in left and "hostname: pi-2" in left
    assert rec.written_sha256 == run._sha(left.encode()) != rec.config_sha256
    etc = boardconfig.parse_text((board.root / "etc/pikube/config.yaml").read_text(), secrets_removed=True)
    assert etc == boardconfig.without_secrets(boardconfig.parse_text(WORKER_YAML))
    assert (board.root / "etc/hostname").read_text() == "pi-2\n"


def test_the_next_boots_do_nothing_and_write_nothing(board: Board) -> None:
    board.fat.write_text(WORKER_YAML)
    board.boot()
    before = board.state.read_bytes(), board.state.stat().st_mtime_ns
    board.fake.calls.clear()
    assert board.boot() == 0
    assert board.fake.calls == []
    assert (board.state.read_bytes(), board.state.stat().st_mtime_ns) == before
    assert len(board.lines) == 1 and "was applied at" in board.lines[0] and "nothing to do" in board.lines[0]


def test_an_edited_card_is_applied_again_without_the_removed_secrets(board: Board) -> None:
    board.fat.write_text(WORKER_YAML)
    board.boot()
    psk_before = (board.root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").read_text().split("psk=")[1]
    board.fat.write_text(board.fat.read_text().replace("hostname: pi-2", "hostname: pi-7"))
    board.fake.calls.clear()
    assert board.boot() == 0
    rec = board.record()
    assert rec.result == firstboot.APPLIED
    assert {s.name: s.status for s in rec.steps} == {
        "growfs": "done", "hostname": "done", "timezone": "unchanged", "user": "unchanged", "ssh": "unchanged",
        "wifi": "unchanged", "network": "unchanged", "config": "done", "role": "done"}
    assert board.fake.calls == ["role worker ready=True token=False"]  # growfs is carried from the first boot
    assert (board.root / "etc/hostname").read_text() == "pi-7\n"
    assert (board.root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").read_text().split("psk=")[1] == psk_before


def test_a_malformed_card_applies_nothing_and_says_why(board: Board) -> None:
    board.fat.write_text("hostname: Pi 2\nwifi:\n  ssid: home\n  passphrase: short\n  country: GB\n")
    assert board.boot() == 0  # the boot goes on
    rec = board.record()
    assert rec.result == firstboot.INVALID
    assert [p.split(":")[0] for p in rec.problems] == ["hostname", "wifi.passphrase"]
    assert [(s.name, s.status) for s in rec.steps] == [("growfs", "done")]  # the card is still grown
    assert (board.root / "etc/hostname").read_text() == "pikube\n"
    assert not (board.root / "etc/pikube").exists()
    assert board.lines[0] == ("pikube firstboot: /boot/firmware/pikube.yaml is not valid; nothing was applied. "
                              "Fix it and reboot:")
    said = [f"pikube firstboot:   {p}" for p in rec.problems]
    assert board.lines[1:] == [*said, "pikube firstboot: growfs: grown"]
    assert board.ready == ["READY"]
    # the next boot says it again without writing; a fixed file is then applied
    mtime = board.state.stat().st_mtime_ns
    assert board.boot() == 0 and board.lines[1:] == [f"pikube firstboot:   {p}" for p in rec.problems]
    assert board.state.stat().st_mtime_ns == mtime
    board.fat.write_text("hostname: pi-2\n")
    assert board.boot() == 0 and board.record().result == firstboot.APPLIED
    assert board.fake.calls.count("growfs") == 1  # grown once only
    assert (board.root / "etc/hostname").read_text() == "pi-2\n"


def test_a_card_that_is_not_text(board: Board) -> None:
    board.fat.write_bytes(b"\xff\xfe\x00h")
    assert board.boot() == 0
    assert board.record().problems == ("/boot/firmware/pikube.yaml: the file is not UTF-8 text.",)


def test_no_pikube_yaml_grows_the_card_once_and_does_nothing_else(board: Board) -> None:
    assert board.boot() == 0
    rec = board.record()
    assert rec.result == firstboot.ABSENT and [s.name for s in rec.steps] == ["growfs"]
    assert board.boot() == 0 and board.fake.calls == ["growfs"]
    assert board.lines == ["pikube firstboot: no /boot/firmware/pikube.yaml; nothing to do"]


def test_a_failed_step_does_not_stop_the_others_and_keeps_its_secret_for_the_next_boot(board: Board) -> None:
    board.fat.write_text(WORKER_YAML)
    board.fake.fail_role = "enable-worker failed 4 times; the last error: refused"
    assert board.boot() == 1
    rec = board.record()
    assert rec.result == firstboot.FAILED
    [failed] = rec.failed_steps
    assert (failed.name, failed.error) == ("role", "enable-worker failed 4 times; the last error: refused")
    left = board.fat.read_text()
    assert TOKEN in left and "correct horse" not in left  # Wi-Fi was applied, the join was not
    assert "failed: role; the next boot tries again" in board.lines[-1]
    board.fake.fail_role = None
    assert board.boot() == 0 and board.record().result == firstboot.APPLIED
    assert TOKEN not in board.fat.read_text()


def test_a_step_that_crashes_is_recorded_and_the_rest_still_run(board: Board) -> None:
    def broken(host: Host, cfg: BoardConfig) -> Outcome:
        raise PermissionError("read-only file system")

    board.fat.write_text("hostname: pi-3\ntimezone: Europe/London\n")
    steps = [(n, broken if n == "hostname" else s) for n, s in board.steps()]
    assert run.FirstBoot(board.host, steps).run() == 1
    rec = board.record()
    assert {s.name: s.status for s in rec.steps}["timezone"] == "done"
    assert rec.failed_steps[0].error == "PermissionError: read-only file system"


def test_a_record_cut_short_in_the_role_step_is_run_again(board: Board) -> None:
    board.fat.write_text(WORKER_YAML)

    def power_cut(host: Host, cfg: BoardConfig) -> Outcome:
        raise KeyboardInterrupt  # stands for the board losing power mid-join

    steps = [(n, power_cut if n == "role" else s) for n, s in board.steps()]
    with pytest.raises(KeyboardInterrupt):
        run.FirstBoot(board.host, steps).run()
    rec = board.record()
    assert rec.result == firstboot.RUNNING and rec.steps[-1].name == "config"
    assert TOKEN in board.fat.read_text()
    assert board.boot() == 0 and board.record().result == firstboot.APPLIED


def test_the_fat_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "pikube.yaml"
    path.write_text("old")
    run.write_fat(path, "new\n")
    assert path.read_text() == "new\n" and sorted(os.listdir(tmp_path)) == ["pikube.yaml"]


def test_the_command_applies_a_tree_without_touching_the_running_system(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path / "image")
    (root / "boot/firmware/pikube.yaml").write_text("hostname: pi-9\ntimezone: Europe/London\nrole: none\n")
    assert cli_run(["firstboot", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "pikube firstboot: growfs: not the running system's root (skipped)" in out
    assert "pikube firstboot: hostname: set to pi-9" in out
    assert (root / "etc/hostname").read_text() == "pi-9\n"
    rec = firstboot.load(root / "var/lib/pikube/firstboot.json")
    assert rec is not None and rec.result == firstboot.APPLIED


def test_the_command_needs_root_on_the_running_system(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli_run(["firstboot"]) == 1
    assert "run it as root" in capsys.readouterr().err


def test_ready_is_sent_to_systemd(tmp_path: Path) -> None:
    import socket

    from pikube.cli.firstboot import sd_notify

    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        assert sd_notify("READY=1", env={"NOTIFY_SOCKET": path})
        assert s.recv(100) == b"READY=1"
    assert not sd_notify("READY=1", env={})


def test_a_tree_that_is_not_the_running_system_is_applied_again_when_the_board_boots(board: Board) -> None:
    board.host.live = False
    board.fat.write_text(WORKER_YAML)
    assert board.boot() == 0
    rec = board.record()
    assert rec.result == firstboot.APPLIED and rec.config_sha256 == ""
    assert isinstance(board.runner, FakeRunner) and board.runner.calls == []  # nothing run on this machine
    assert (board.root / "etc/hostname").read_text() == "pi-2\n"
    assert board.fat.read_text() == WORKER_YAML  # the secrets stay for the board's own first boot
    board.host.live = True
    board.fake.calls.clear()
    assert board.boot() == 0
    assert board.fake.calls == ["growfs", "role worker ready=True token=True"]
    assert TOKEN not in board.fat.read_text()


def test_a_failing_command_is_that_steps_error(board: Board) -> None:
    board.runner.handlers["useradd"] = lambda argv: Completed(tuple(argv), 9, "", "useradd: cannot lock /etc/passwd")
    board.fat.write_text("user: carol\nhostname: pi-5\n")
    assert board.boot() == 1
    [failed] = board.record().failed_steps
    assert failed.name == "user" and failed.error.endswith("exited 9: useradd: cannot lock /etc/passwd")
    assert "Traceback" not in "\n".join(board.lines)
    assert (board.root / "etc/hostname").read_text() == "pi-5\n"
