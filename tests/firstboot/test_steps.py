"""Each first-boot step on a temporary board root: the files it leaves, the commands it runs, and a second run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core import firstboot
from core.boardconfig import BoardConfig, Network, Wifi
from pikube.bootstrap import record
from pikube.bootstrap.init import InitKind
from pikube.cli import boardfile
from pikube.firstboot import accounts, network, role, system
from pikube.firstboot.host import Completed
from pikube.firstboot.step import StepError
from tests.firstboot.fakes import ED25519, TOKEN, make_host, make_root

RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx bob@desk"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- hostname and time zone ----------------------------------------------------------------------

def test_hostname_writes_both_files_and_sets_the_running_name(root: Path) -> None:
    host, runner, _, _ = make_host(root, live=True)
    out = system.hostname(host, BoardConfig(hostname="pi-1"))
    assert out.status == firstboot.DONE and out.message == "set to pi-1"
    assert (root / "etc/hostname").read_text() == "pi-1\n"
    assert (root / "etc/hosts").read_text() == "127.0.0.1\tlocalhost\n127.0.1.1\tpi-1\n::1\t\tlocalhost ip6-localhost\n"
    assert runner.argvs() == [("hostname", "pi-1")]


def test_hostname_a_second_time_changes_nothing(root: Path) -> None:
    host, runner, _, _ = make_host(root)
    system.hostname(host, BoardConfig(hostname="pi-1"))
    before = (root / "etc/hosts").stat().st_mtime_ns
    assert system.hostname(host, BoardConfig(hostname="pi-1")).status == firstboot.UNCHANGED
    assert (root / "etc/hosts").stat().st_mtime_ns == before
    assert runner.argvs() == []  # not live: the running system's name is not touched
    assert system.hostname(host, BoardConfig()).status == firstboot.SKIPPED


@pytest.mark.parametrize(("before", "after"), [
    ("127.0.0.1 localhost\n", "127.0.0.1 localhost\n127.0.1.1\tpi-1\n"),
    ("127.0.0.1 localhost\n127.0.1.1 old old.lan\n10.0.0.1 nas\n127.0.1.1 again\n",
     "127.0.0.1 localhost\n127.0.1.1\tpi-1\n10.0.0.1 nas\n"),
    ("", "127.0.0.1\tlocalhost\n127.0.1.1\tpi-1\n"),
])
def test_hosts_file(before: str, after: str) -> None:
    assert system.hosts_with(before, "pi-1") == after


def test_timezone(root: Path) -> None:
    host, _, _, _ = make_host(root)
    assert system.timezone(host, BoardConfig(timezone="Europe/London")).status == firstboot.DONE
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Europe/London"
    assert (root / "etc/timezone").read_text() == "Europe/London\n"
    assert system.timezone(host, BoardConfig(timezone="Europe/London")).status == firstboot.UNCHANGED
    with pytest.raises(StepError, match="no zone file /usr/share/zoneinfo/Europe/Paris"):
        system.timezone(host, BoardConfig(timezone="Europe/Paris"))


# -- user, keys, sshd ----------------------------------------------------------------------------

def test_keys_without_a_user_go_to_root(root: Path) -> None:
    host, runner, _, _ = make_host(root)
    ssh = root / "root/.ssh"
    ssh.mkdir(mode=0o755)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAAmine added-by-hand\n")
    out = accounts.user(host, BoardConfig(ssh_authorized_keys=(ED25519, RSA)))
    assert out.status == firstboot.DONE
    text = (ssh / "authorized_keys").read_text()
    assert text == (f"ssh-ed25519 AAAAmine added-by-hand\n\n{accounts.BEGIN}\n{ED25519}\n{RSA}\n{accounts.END}\n")
    assert mode(ssh) == 0o700 and mode(ssh / "authorized_keys") == 0o600
    assert runner.argvs() == []
    assert accounts.user(host, BoardConfig(ssh_authorized_keys=(ED25519, RSA))).status == firstboot.UNCHANGED
    # a changed list replaces the block only
    accounts.user(host, BoardConfig(ssh_authorized_keys=(RSA,)))
    assert (ssh / "authorized_keys").read_text() == (
        f"ssh-ed25519 AAAAmine added-by-hand\n\n{accounts.BEGIN}\n{RSA}\n{accounts.END}\n")


def test_a_new_user_gets_the_admin_groups_sudo_and_the_keys(root: Path) -> None:
    host, runner, _, _ = make_host(root)
    accounts.user(host, BoardConfig(ssh_authorized_keys=(RSA,)))  # keys first went to root
    out = accounts.user(host, BoardConfig(user="alice", ssh_authorized_keys=(ED25519,)))
    assert out.status == firstboot.DONE and out.message == "user alice with 1 SSH key(s) and sudo"
    assert runner.argvs() == [("useradd", "--root", str(root), "--create-home", "--shell", "/bin/bash",
                               "--user-group", "--comment", "pikube user", "--groups", "sudo,adm,docker", "alice")]
    keys = root / "home/alice/.ssh/authorized_keys"
    assert keys.read_text() == f"{accounts.BEGIN}\n{ED25519}\n{accounts.END}\n"
    assert (keys.stat().st_uid, mode(keys), mode(keys.parent)) == (os.getuid(), 0o600, 0o700)
    sudoers = root / "etc/sudoers.d/pikube-alice"
    assert sudoers.read_text().endswith("alice ALL=(ALL:ALL) NOPASSWD: ALL\n") and mode(sudoers) == 0o440
    assert not (root / "root/.ssh/authorized_keys").exists()  # the keys moved from root to alice
    assert accounts.user(host, BoardConfig(user="alice", ssh_authorized_keys=(ED25519,))).status == \
        firstboot.UNCHANGED
    assert len(runner.calls) == 1


def test_an_existing_user_only_joins_the_groups_it_lacks(root: Path) -> None:
    with open(root / "etc/passwd", "a") as f:
        f.write(f"bob:x:{os.getuid()}:{os.getgid()}::/home/bob:/bin/bash\n")
    (root / "etc/group").write_text("adm:x:4:bob\nsudo:x:27:\n")
    host, runner, _, _ = make_host(root)
    accounts.user(host, BoardConfig(user="bob"))
    assert runner.argvs() == [("usermod", "--root", str(root), "--append", "--groups", "sudo", "bob")]


def test_a_failing_useradd_fails_the_step(root: Path) -> None:
    host, runner, _, _ = make_host(root)
    runner.handlers["useradd"] = lambda argv: Completed(tuple(argv), 9, "", "useradd: cannot lock /etc/passwd")
    with pytest.raises(Exception, match="cannot lock /etc/passwd"):
        accounts.user(host, BoardConfig(user="carol"))


def test_sshd_drop_in(root: Path) -> None:
    host, runner, _, _ = make_host(root, live=True)
    drop_in = root / accounts.SSHD_DROPIN.lstrip("/")
    assert accounts.sshd(host, BoardConfig(ssh_authorized_keys=(ED25519,))).status == firstboot.DONE
    assert "PasswordAuthentication no\n" in drop_in.read_text()
    assert runner.argvs() == [("systemctl", "--no-block", "try-reload-or-restart", "ssh.service")]
    assert accounts.sshd(host, BoardConfig(ssh_authorized_keys=(ED25519,))).status == firstboot.UNCHANGED
    assert accounts.sshd(host, BoardConfig()).status == firstboot.DONE
    assert not drop_in.exists()
    assert accounts.sshd(host, BoardConfig()).status == firstboot.SKIPPED


# -- Wi-Fi and the wired link --------------------------------------------------------------------

IEEE_VECTOR = Wifi(ssid="IEEE", passphrase="password", country="GB")  # IEEE 802.11i-2004, annex H.4
IEEE_PSK = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"


def test_wifi_files_country_and_the_hashed_key(root: Path) -> None:
    host, _, _, _ = make_host(root)
    out = network.wifi(host, BoardConfig(wifi=IEEE_VECTOR))
    assert out.status == firstboot.DONE and out.message == "joins 'IEEE', country GB"
    conf = root / network.WPA_CONF.lstrip("/")
    text = conf.read_text()
    assert "country=GB\n" in text and f"\tssid={b'IEEE'.hex()}\n" in text and f"\tpsk={IEEE_PSK}\n" in text
    assert "password" not in text.replace("passphrase", "")
    assert mode(conf) == 0o600
    assert "Name=wlan0" in (root / network.WLAN_NETWORK.lstrip("/")).read_text()
    assert os.readlink(root / network.WPA_LINK.lstrip("/")) == "/lib/systemd/system/wpa_supplicant@.service"
    assert (root / network.REGDOM_CONF.lstrip("/")).read_text().endswith("options cfg80211 ieee80211_regdom=GB\n")
    assert network.wifi(host, BoardConfig(wifi=IEEE_VECTOR)).status == firstboot.UNCHANGED


def test_wifi_a_psk_given_as_hex_is_used_as_it_is(root: Path) -> None:
    host, _, _, _ = make_host(root)
    network.wifi(host, BoardConfig(wifi=Wifi("IEEE", IEEE_PSK.upper(), "DE")))
    assert f"\tpsk={IEEE_PSK}\n" in (root / network.WPA_CONF.lstrip("/")).read_text()


def test_wifi_without_its_passphrase_keeps_the_stored_key_for_the_same_network(root: Path) -> None:
    host, _, _, _ = make_host(root)
    network.wifi(host, BoardConfig(wifi=IEEE_VECTOR))
    out = network.wifi(host, BoardConfig(wifi=Wifi("IEEE", None, "FR")))  # removed from the card; country edited
    text = (root / network.WPA_CONF.lstrip("/")).read_text()
    assert f"psk={IEEE_PSK}" in text and "country=FR" in text and "(its key kept from before)" in out.message
    network.wifi(host, BoardConfig(wifi=Wifi("Cafe", None, "FR")))  # another network, no passphrase: open
    text = (root / network.WPA_CONF.lstrip("/")).read_text()
    assert "key_mgmt=NONE" in text and "psk=" not in text


def test_wifi_unblocks_rfkill_now_and_for_later_boots(root: Path) -> None:
    host, runner, _, _ = make_host(root, live=True)
    state = root / network.RFKILL_STATE.lstrip("/")
    state.mkdir(parents=True)
    (state / "platform-old:wlan").write_text("1\n")
    (state / "platform-bt:bluetooth").write_text("1\n")
    radio = root / "sys/class/rfkill/rfkill0"
    radio.mkdir(parents=True)
    (radio / "type").write_text("wlan\n")
    runner.handlers["udevadm"] = lambda argv: Completed(tuple(argv), 0, "DEVPATH=/x\nID_PATH=platform-fe300000.mmcnr\n")
    network.wifi(host, BoardConfig(wifi=IEEE_VECTOR))
    assert (state / "platform-old:wlan").read_text() == "0\n"
    assert (state / "platform-fe300000.mmcnr:wlan").read_text() == "0\n"
    assert (state / "platform-bt:bluetooth").read_text() == "1\n"  # only Wi-Fi
    assert runner.argvs() == [
        ("udevadm", "info", "--query=property", "--path=/sys/class/rfkill/rfkill0"),
        ("rfkill", "unblock", "wifi"),
        ("iw", "reg", "set", "GB"),
        ("systemctl", "--no-block", "restart", "wpa_supplicant@wlan0.service"),
        ("systemctl", "is-active", "--quiet", "systemd-networkd.service"),
        ("networkctl", "reload"),
    ]


def test_networkd_is_asked_to_reload_only_when_it_runs(root: Path) -> None:
    host, runner, _, _ = make_host(root, live=True)
    runner.handlers["systemctl"] = lambda argv: Completed(tuple(argv), 3)  # inactive, as at boot
    network.ethernet(host, BoardConfig())
    assert runner.argvs() == [("systemctl", "is-active", "--quiet", "systemd-networkd.service")]


def test_wifi_without_wpa_supplicant_fails_clearly(root: Path) -> None:
    (root / "lib/systemd/system/wpa_supplicant@.service").unlink()
    host, _, _, _ = make_host(root)
    with pytest.raises(StepError, match="is the wpasupplicant package installed"):
        network.wifi(host, BoardConfig(wifi=IEEE_VECTOR))
    assert network.wifi(host, BoardConfig()).status == firstboot.SKIPPED


def test_wired_static_address_then_dhcp(root: Path) -> None:
    host, _, _, _ = make_host(root)
    path = root / network.ETH_NETWORK.lstrip("/")
    assert path.name < "90-pikube-dhcp.network"  # networkd takes the first file matching a link
    cfg = BoardConfig(network=Network("192.168.1.20/24", "192.168.1.1", ("192.168.1.1", "1.1.1.1")))
    assert network.ethernet(host, cfg).message == "wired link: static 192.168.1.20/24 via 192.168.1.1"
    text = path.read_text()
    assert "Address=192.168.1.20/24\nGateway=192.168.1.1\nDNS=192.168.1.1\nDNS=1.1.1.1\n" in text
    assert "DHCP" not in text
    assert network.ethernet(host, cfg).status == firstboot.UNCHANGED
    assert network.ethernet(host, BoardConfig()).message == "wired link: DHCP"
    assert path.read_text().endswith("[Network]\nDHCP=yes\n")


# -- role ----------------------------------------------------------------------------------------

WORKER = BoardConfig(hostname="pi-2", role="worker", master="10.0.0.1", token=TOKEN)


def test_the_worker_waits_for_its_master_then_joins_with_the_token_in_its_environment(root: Path) -> None:
    host, runner, lines, sleeps = make_host(root, live=True)
    answers = iter(["Connection refused", "No route to host", None])
    step = role.RoleStep(probe=lambda h, p: next(answers), first_delay=1.0, max_delay=1.5)
    out = step(host, WORKER)
    assert out.status == firstboot.DONE and out.message == "enable-worker done: joined the master at 10.0.0.1:6443"
    assert sleeps == [1.0, 1.5]
    assert [ln.split(" (")[0] for ln in lines] == [
        "pikube firstboot: role: try 1: the master at 10.0.0.1:6443 does not answer yet",
        "pikube firstboot: role: try 2: the master at 10.0.0.1:6443 does not answer yet"]
    docker, call = runner.calls
    assert docker.argv == ("systemctl", "start", "docker.service")
    assert call.argv == ("/opt/pikube/venv/bin/python", "-m", "pikube", "enable-worker", "10.0.0.1",
                         "--node-name", "pi-2")
    assert call.env == {"PIKUBE_TOKEN": TOKEN} and TOKEN not in " ".join(call.argv)
    assert role.ENV_TOKEN == boardfile.ENV_TOKEN


def test_a_worker_the_master_keeps_refusing_fails_with_the_last_error(root: Path) -> None:
    host, runner, _, sleeps = make_host(root, live=True)
    runner.handlers["python"] = lambda argv: Completed(
        tuple(argv), 1, "", "enable-worker: joining...\nenable-worker: the master refused the join token.\n")
    step = role.RoleStep(probe=lambda h, p: None, first_delay=1.0, attempts=3)
    with pytest.raises(StepError, match=r"enable-worker failed 3 times; the last error: enable-worker: the master "
                                        r"refused the join token\.$"):
        step(host, WORKER)
    assert [c.argv[3] for c in runner.calls[1:]] == ["enable-worker"] * 3 and sleeps == [1.0, 2.0]


def test_enable_master(root: Path) -> None:
    host, runner, _, _ = make_host(root, live=True)
    out = role.RoleStep()(host, BoardConfig(hostname="pi-1", role="master"))
    assert out.status == firstboot.DONE
    assert runner.argvs()[-1] == ("/opt/pikube/venv/bin/python", "-m", "pikube", "enable-master", "--node-name",
                                  "pi-1")


def test_no_role_is_taken_on_a_tree_that_is_not_the_running_system(root: Path) -> None:
    host, runner, _, _ = make_host(root)
    assert role.RoleStep()(host, BoardConfig(role="master")).message == role.NOT_LIVE
    assert role.RoleStep(probe=lambda h, p: None)(host, WORKER).status == firstboot.SKIPPED
    assert runner.calls == []


def test_live_role_waits_for_the_network_and_docker_first(root: Path) -> None:
    (root / "lib/systemd/systemd-networkd-wait-online").write_text("")
    host, runner, _, _ = make_host(root, live=True)
    role.RoleStep()(host, BoardConfig(role="master"))
    assert runner.argvs()[:2] == [("/lib/systemd/systemd-networkd-wait-online", "--any", "--timeout=120"),
                                  ("systemctl", "start", "docker.service")]


def _save_record(root: Path, role_: record.Role, server: str) -> None:
    record.save(root / "etc/pikube/node.json", record.NodeRecord(
        role=role_, node_name="pi-2", server=server, backend="host-gw", init=InitKind.SYSTEMD,
        data_dir="/var/lib/pikube", docker_host="unix:///var/run/docker.sock"))


def test_a_board_already_in_that_role_runs_nothing(root: Path) -> None:
    host, runner, _, _ = make_host(root)
    _save_record(root, record.Role.WORKER, "https://10.0.0.1:6443")
    out = role.RoleStep(probe=lambda h, p: "down")(host, BoardConfig(role="worker", master="10.0.0.1"))
    assert out == role.changed(False, "", "already a worker of https://10.0.0.1:6443 (node pi-2)")
    assert runner.calls == []
    _save_record(root, record.Role.MASTER, "https://10.0.0.9:6443")
    assert role.RoleStep()(host, BoardConfig(role="master")).status == firstboot.UNCHANGED


def test_a_worker_without_token_that_has_not_joined_says_so(root: Path) -> None:
    host, _, _, _ = make_host(root)
    with pytest.raises(StepError, match="no join token any more"):
        role.RoleStep()(host, BoardConfig(role="worker", master="10.0.0.1"))
    assert role.RoleStep()(host, BoardConfig(role="none")).status == firstboot.SKIPPED
