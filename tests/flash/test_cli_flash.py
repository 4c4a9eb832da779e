"""`pikube flash` and `pikube preseed` as a user types them: settings checked first, sentences, confirmation."""

from __future__ import annotations

import base64
import io
import struct
from pathlib import Path

import pytest

from core import boardconfig
from core.boardconfig import BoardConfig
from pikube.cli import flash as cli
from pikube.cli.main import CliError, run
from pikube.dev import cardimage
from pikube.flash import fat, probe, progress, seed
from tests.flash.conftest import TOKEN
from tests.flash.hosts import host


def pubkey(tmp_path: Path, name: str = "id_ed25519.pub") -> Path:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + b"k" * 32
    path = tmp_path / name
    path.write_text(f"ssh-ed25519 {base64.b64encode(blob).decode()} alice@laptop\n")
    return path


def yaml_on(card: Path, image: cardimage.CardImage) -> BoardConfig:
    text = fat.read_file(card, image.fat_start, seed.FILENAME)
    assert text is not None
    return boardconfig.parse_text(text.decode())


def test_list_shows_only_cards(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(probe, "host", lambda: host("laptop-nvme-usb-reader"))
    assert run(["flash", "--list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["DEVICE", "SIZE", "TRANSPORT", "MODEL"]
    assert rows[1].split() == ["/dev/sda", "31.9", "GB", "usb", "Generic-", "SD/MMC/MS", "PRO"]
    assert rows[2].startswith("/dev/sdc") and rows[2].endswith("mounted: unmount before flashing")
    assert len(rows) == 3  # no NVMe, no empty reader slot


def test_list_with_no_cards(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(probe, "host", lambda: host("loop-devices"))
    assert run(["flash", "--list"]) == 0
    assert capsys.readouterr().out.startswith("No cards found.")


def test_flash_a_worker_card(card_image: cardimage.CardImage, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "card.bin"
    key = pubkey(tmp_path)
    assert run(["flash", str(card_image.path.with_name("p.img.xz")), str(card), "--hostname", "pi-2",
                "--role", "worker", "--master", "192.168.1.10", "--token", TOKEN, "--ssh-key", str(key),
                "--wifi-ssid", "Home", "--wifi-password", "correct horse", "--wifi-country", "GB"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"Wrote p.img.xz to {card}: ") and "left out thanks to the bmap" in lines[0]
    assert lines[1].startswith("Verified: ") and lines[1].endswith("match the image (SHA-256).")
    assert lines[2] == ("Board settings in pikube.yaml (read back and checked): hostname=pi-2, role=worker, "
                        "master=192.168.1.10, token=<hidden>, ssh keys=1, wifi=Home (GB, passphrase <hidden>).")
    assert TOKEN not in out + err and "correct horse" not in out + err
    assert "writing: done" in err and "verifying: done" in err and "\r" not in err
    cfg = yaml_on(card, card_image)
    assert (cfg.hostname, cfg.role, cfg.token, cfg.wifi and cfg.wifi.passphrase) == ("pi-2", "worker", TOKEN,
                                                                                     "correct horse")
    assert cfg.ssh_authorized_keys == (key.read_text().strip(),)


def test_config_file_under_the_flags(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    shared = tmp_path / "common.yaml"
    shared.write_text("role: worker\nmaster: 192.168.1.10\nhostname: will-be-replaced\n"
                      "wifi:\n  ssid: Home\n  country: NO\ntimezone: Europe/Oslo\n")
    card = tmp_path / "card.bin"
    assert run(["flash", str(card_image.path), str(card), "--config", str(shared), "--hostname", "pi-5",
                "--token", TOKEN, "--wifi-password", "correct horse"]) == 0
    cfg = yaml_on(card, card_image)
    assert cfg.hostname == "pi-5" and cfg.master == "192.168.1.10" and cfg.token == TOKEN
    assert cfg.wifi == boardconfig.Wifi("Home", "correct horse", "NO")  # NO is Norway, not false


BAD_INPUT = [
    (["--role", "boss"], "role (--role): is master, worker or none, not 'boss'."),
    (["--wifi-ssid", "Home", "--wifi-country", "GB", "--wifi-password", "x" * 80],
     "wifi.passphrase (--wifi-password): a WPA passphrase has 8 to 63 characters; this one has 80."),
    (["--hostname", "Pi_3"], "hostname (--hostname): a host name holds only lowercase letters"),
    (["--wifi-ssid", "Home"], "wifi.country (--wifi-country): give the two-letter country code"),
    (["--role", "worker", "--master", "10.0.0.1"], "token (--token): a worker needs the join token"),
]


@pytest.mark.parametrize("flags,problem", BAD_INPUT, ids=[f[0] for f, _ in BAD_INPUT])
def test_bad_settings_are_refused_before_anything_is_written(card_image: cardimage.CardImage, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str], flags: list[str],
                                                             problem: str) -> None:
    card = tmp_path / "card.bin"
    assert run(["flash", str(card_image.path), str(card), *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pikube: the board settings are not valid") and problem in err
    assert not card.exists()


def test_a_wrong_ssh_key_format_and_a_private_key(card_image: cardimage.CardImage, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "card.bin"
    wrong = tmp_path / "wrong.pub"
    wrong.write_text("ssh-ed25519 not*base64 alice\n")
    private = tmp_path / "id_ed25519"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                       "-----END OPENSSH PRIVATE KEY-----\n")
    assert run(["flash", str(card_image.path), str(card), "--ssh-key", str(wrong), "--ssh-key", str(private),
                "--hostname", "pi-1"]) == 1
    err = capsys.readouterr().err
    assert "ssh.authorized_keys (--ssh-key): the data of the ssh-ed25519 key is not valid base64" in err
    assert f"--ssh-key: {private} is a PRIVATE key: never copy it to a board; give the public key ({private}.pub)." \
        in err
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in err
    assert not card.exists()


def test_a_missing_image_and_a_missing_target_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = tmp_path / "card.bin"
    assert run(["flash", str(tmp_path / "missing.img.zst"), str(card)]) == 1
    assert capsys.readouterr().err == (f"pikube: the image {tmp_path}/missing.img.zst does not exist. "
                                       "Nothing was written.\n")
    assert not card.exists()
    assert run(["flash", str(tmp_path / "missing.img")]) == 1
    assert "give the image and the card: pikube flash IMAGE DEVICE" in capsys.readouterr().err


def test_an_existing_file_is_overwritten_only_when_confirmed(card_image: cardimage.CardImage, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "thesis.pdf"
    precious.write_bytes(b"%PDF-1.7 my thesis")
    assert run(["flash", str(card_image.path), str(precious)]) == 1  # stdin is not a terminal under pytest
    assert f"overwrite the file {precious} needs confirmation: run it in a terminal, or add --yes." in \
        capsys.readouterr().err
    assert precious.read_bytes() == b"%PDF-1.7 my thesis"
    assert run(["flash", str(card_image.path), str(precious), "--yes"]) == 0


def test_confirmation_of_a_card_and_of_a_fixed_disk() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    cli.confirm("/dev/sdb", "erase /dev/sdb", yes=False, needs_path=False, stdin=Tty("y\n"))
    with pytest.raises(CliError, match="not confirmed; nothing was written"):
        cli.confirm("/dev/sdb", "erase /dev/sdb", yes=False, needs_path=False, stdin=Tty("\n"))
    cli.confirm("/dev/sdb", "erase /dev/sdb", yes=True, needs_path=False, stdin=Tty(""))
    # A fixed disk: --yes does not skip typing its path, and "y" is not its path.
    with pytest.raises(CliError, match="not confirmed"):
        cli.confirm("/dev/nvme0n1", "erase /dev/nvme0n1", yes=True, needs_path=True, stdin=Tty("y\n"))
    cli.confirm("/dev/nvme0n1", "erase /dev/nvme0n1", yes=True, needs_path=True, stdin=io.StringIO("/dev/nvme0n1\n"))
    with pytest.raises(CliError, match="no answer"):
        cli.confirm("/dev/nvme0n1", "erase /dev/nvme0n1", yes=False, needs_path=True, stdin=io.StringIO(""))


def test_ctrl_c_says_the_card_is_incomplete(card_image: cardimage.CardImage, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    class Interrupting(progress.Silent):
        def advance(self, done: int) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress, "for_stream", lambda out: Interrupting())
    card = tmp_path / "card.bin"
    assert run(["flash", str(card_image.path), str(card), "--hostname", "pi-1", "--no-bmap"]) == 130
    err = capsys.readouterr().err
    assert (f"pikube: interrupted: {card} is not ready (stopped while writing or verifying: it may not boot). "
            "Run the same command again before using it.") in err
    with pytest.raises(fat.FatError, match="non DOS media"):  # stopped after the first chunk: no FAT yet
        fat.read_file(card, card_image.fat_start, seed.FILENAME)


def test_preseed_cli_on_an_image_file(card_image: cardimage.CardImage, image_copy: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["preseed", str(image_copy)]) == 1
    assert "nothing to preseed: give at least one setting" in capsys.readouterr().err
    assert run(["preseed", str(card_image.path.with_name("p.img.gz")), "--hostname", "pi-1"]) == 1
    assert "is compressed: preseed the card after flashing it" in capsys.readouterr().err
    assert run(["preseed", str(tmp_path / "nope.img"), "--hostname", "pi-1"]) == 1
    assert "does not exist" in capsys.readouterr().err
    for n in (1, 2):
        assert run(["preseed", str(image_copy), "--hostname", f"pi-{n}"]) == 0
        verb = "Wrote" if n == 1 else "Replaced"
        assert capsys.readouterr().out == (f"{verb} pikube.yaml on {image_copy} (read back and checked): "
                                           f"hostname=pi-{n}.\n")
    assert yaml_on(image_copy, card_image) == BoardConfig(hostname="pi-2")


def test_flash_needs_no_root_for_a_file(card_image: cardimage.CardImage, tmp_path: Path) -> None:
    from pikube.flash import flasher

    plan = flasher.plan(card_image.path, tmp_path / "card.bin", euid=1000)
    assert plan.decision is None and not plan.target.is_block
