"""pikube.yaml: every mistake a user makes on a card gets its own sentence, all of them at once."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from core import boardconfig
from core.boardconfig import BoardConfig, ConfigError, Network, Wifi

TOKEN = f"pikube-{'0123456789abcdef' * 4}::abcdef.0123456789abcdef"


def ssh_blob(kind: str, payload: bytes = b"\x00\x00\x00\x20" + b"k" * 32) -> str:
    data = struct.pack(">I", len(kind)) + kind.encode() + payload
    return base64.b64encode(data).decode()


ED25519 = f"ssh-ed25519 {ssh_blob('ssh-ed25519')} alice@laptop"
RSA = f"ssh-rsa {ssh_blob('ssh-rsa')} bob@desk"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        boardconfig.parse_text(text)
    return info.value.problems


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# -- whole files ---------------------------------------------------------------------------------

def test_a_full_file_parses_into_the_dataclasses() -> None:
    cfg = boardconfig.parse_text(f"""
version: 1
hostname: pi-2
role: worker
master: 192.168.1.10:6443
token: {TOKEN}
user: alice
ssh:
  authorized_keys:
    - {ED25519}
    - command="uptime",no-pty {RSA}
wifi:
  ssid: Home Net
  passphrase: correct horse
  country: GB
network:
  address: 192.168.1.22/24
  gateway: 192.168.1.1
  dns: [192.168.1.1, 2606:4700:4700::1111]
timezone: UTC
""")
    assert cfg == BoardConfig(
        hostname="pi-2", role="worker", master="192.168.1.10:6443", token=TOKEN, user="alice",
        ssh_authorized_keys=(ED25519, f'command="uptime",no-pty {RSA}'),
        wifi=Wifi(ssid="Home Net", passphrase="correct horse", country="GB"),
        network=Network(address="192.168.1.22/24", gateway="192.168.1.1",
                        dns=("192.168.1.1", "2606:4700:4700::1111")),
        timezone="UTC")


def test_an_empty_file_is_an_empty_config() -> None:
    assert boardconfig.parse_text("") == BoardConfig()
    assert boardconfig.parse_text("# nothing yet\n") == BoardConfig()


def test_plain_values_are_text_as_typed_not_yaml_booleans_or_numbers() -> None:
    cfg = boardconfig.parse_text("wifi:\n  ssid: yes\n  passphrase: 0123456712\n  country: NO\nhostname: 1234\n")
    assert cfg.wifi == Wifi(ssid="yes", passphrase="0123456712", country="NO")
    assert cfg.hostname == "1234"


def test_bad_yaml_names_the_line() -> None:
    message = only_problem("hostname: pi-1\nwifi:\n  ssid: [unclosed\n")
    assert message.startswith("pikube.yaml: this is not valid YAML at line")


def test_tabs_get_a_hint() -> None:
    assert "not tabs" in only_problem("wifi:\n\tssid: x\n")


def test_the_source_name_is_used_in_messages() -> None:
    with pytest.raises(ConfigError, match=r"^/etc/pikube/config.yaml: this is not valid YAML"):
        boardconfig.parse_text("a: [", source="/etc/pikube/config.yaml")


def test_aliases_are_refused() -> None:
    assert "aliases" in only_problem("a: &x pi-1\nhostname: *x\n")


def test_oversized_files_are_refused_before_parsing() -> None:
    message = only_problem("# " + "x" * boardconfig.MAX_BYTES + "\n")
    assert "at most 65536" in message


def test_not_a_mapping() -> None:
    assert "should be a mapping" in only_problem("- hostname\n")


def test_duplicate_keys_are_reported() -> None:
    assert only_problem("hostname: a\nhostname: b\n") == \
        "hostname: the key is given twice (line 2 repeats it); keep one."


def test_unknown_keys_suggest_the_right_one() -> None:
    found = problems("hostnme: pi-1\nwifi:\n  ssid: x\n  password: abcdefgh\n  country: GB\nauthorized_keys: []\n")
    assert found == [
        "hostnme: unknown key. Did you mean hostname?",
        "authorized_keys: unknown key. Did you mean ssh.authorized_keys?",
        "wifi.password: unknown key. Did you mean wifi.passphrase?",
    ]


def test_an_unknown_key_without_a_near_one_lists_the_keys() -> None:
    assert only_problem("ssh:\n  zzz: 1\n") == "ssh.zzz: unknown key. The keys here are: authorized_keys."


def test_wrong_types_are_named() -> None:
    found = problems("hostname: [a, b]\nwifi: on\nssh:\n  authorized_keys: {a: b}\n")
    assert "hostname: expected text, found a list." in found
    assert any(p.startswith("wifi: expected a mapping with the keys ssid, passphrase, country") for p in found)
    assert "ssh.authorized_keys: expected a list, found a mapping of keys." in found


def test_version() -> None:
    assert boardconfig.parse_text("version: 1\n") == BoardConfig()
    assert "this file is version 2" in only_problem("version: 2\n")
    assert "is a number" in only_problem("version: one\n")


def test_several_errors_are_reported_at_once() -> None:
    found = problems(f"""
hostname: Pi_1
role: worker
wifi:
  ssid: home
  passphrase: {'p' * 80}
  country: uk
ssh:
  authorized_keys:
    - {ED25519}
    - ssh-ed25519 AAAA-not-base64
timezone: Mars/Olympus
""")
    assert "wifi.passphrase: a WPA passphrase has 8 to 63 characters; this one has 80." in found
    assert any(p.startswith("wifi.country: ") and "'GB'" in p for p in found)
    assert any(p.startswith("hostname: ") for p in found)
    assert any(p.startswith("ssh.authorized_keys[2]: ") for p in found)
    assert any(p.startswith("master: a worker needs") for p in found)
    assert any(p.startswith("token: a worker needs") for p in found)
    assert any(p.startswith("timezone: ") for p in found)
    assert len(found) == 7
    # str() is every sentence, one per line, and no secret is in any of them
    with pytest.raises(ConfigError) as info:
        boardconfig.parse_text(f"wifi:\n  ssid: x\n  passphrase: {'p' * 80}\n  country: GB\n")
    assert str(info.value) == "\n".join(info.value.problems)
    assert "ppppppppp" not in str(info.value)


# -- roles ---------------------------------------------------------------------------------------

def test_worker_without_token() -> None:
    assert only_problem("role: worker\nmaster: 10.0.0.1\n").startswith("token: a worker needs the join token")


def test_worker_without_token_is_accepted_once_the_secrets_were_removed() -> None:
    cfg = boardconfig.parse_text("role: worker\nmaster: 10.0.0.1\n", secrets_removed=True)
    assert cfg.role == "worker" and cfg.token is None
    assert "master: a worker needs" in only_problem("role: worker\ntoken: " + TOKEN + "\n")


def test_master_must_not_have_a_master_or_token() -> None:
    found = problems(f"role: master\nmaster: 10.0.0.1\ntoken: {TOKEN}\n")
    assert [p.split(":")[0] for p in found] == ["master", "token"]


def test_token_without_a_role_is_refused() -> None:
    assert "only used with role: worker" in only_problem(f"token: {TOKEN}\n")


def test_unknown_role() -> None:
    assert only_problem("role: controller\n") == "role: is master, worker or none, not 'controller'."


def test_bad_token_is_not_echoed() -> None:
    message = only_problem("role: worker\nmaster: m\ntoken: pikube-zz::abcdef.0123456789abcdef\n")
    assert message.startswith("token: ") and "0123456789abcdef" not in message


# -- round trip and secrets ----------------------------------------------------------------------

FULL = BoardConfig(
    hostname="pi-3", role="worker", master="pi-1.local", token=TOKEN, user="pi",
    ssh_authorized_keys=(ED25519, RSA),
    wifi=Wifi(ssid="Café: 1 # not a comment", passphrase="0123456712", country="NO"),
    network=Network(address="10.1.2.3/16", gateway="10.1.0.1", dns=("10.1.0.1",)),
    timezone="Europe/London")


@pytest.mark.parametrize("cfg", [FULL, BoardConfig(), BoardConfig(role="master", hostname="yes"),
                                 BoardConfig(wifi=Wifi(ssid="null", passphrase=None, country="DE"))])
def test_to_yaml_round_trips(cfg: BoardConfig) -> None:
    text = boardconfig.to_yaml(cfg)
    assert text.startswith("# pikube board configuration")
    assert "version: 1\n" in text
    assert boardconfig.parse_text(text) == cfg
    assert boardconfig.to_yaml(boardconfig.parse_text(text)) == text


def test_without_secrets_drops_passphrase_and_token_only() -> None:
    bare = boardconfig.without_secrets(FULL)
    assert bare.token is None and bare.wifi is not None and bare.wifi.passphrase is None
    assert bare.wifi == Wifi(ssid="Café: 1 # not a comment", passphrase=None, country="NO")
    assert bare.hostname == FULL.hostname and bare.ssh_authorized_keys == FULL.ssh_authorized_keys
    text = boardconfig.to_yaml(bare)
    assert "0123456712" not in text and "abcdef." not in text
    assert boardconfig.parse_text(text, secrets_removed=True) == bare


def test_repr_hides_secrets() -> None:
    shown = repr(FULL)
    assert "0123456712" not in shown and "abcdef.0123456789abcdef" not in shown


def test_from_mapping_checks_the_same_rules() -> None:
    cfg = boardconfig.from_mapping({"hostname": "pi-4", "wifi": {"ssid": "x", "passphrase": "12345678",
                                                                 "country": "FR"}})
    assert cfg.wifi == Wifi("x", "12345678", "FR")
    with pytest.raises(ConfigError, match=r"^wifi.passphrase: a WPA passphrase has 8 to 63 characters; "
                                          r"this one has 7\.$"):
        boardconfig.from_mapping({"wifi": {"ssid": "x", "passphrase": "1234567", "country": "FR"}})


# -- single validators ---------------------------------------------------------------------------

def test_passphrase_lengths() -> None:
    boardconfig.check_passphrase("x" * 8)
    boardconfig.check_passphrase("x" * 63)
    boardconfig.check_passphrase("0123456789abcdefABCDEF" + "0" * 42)  # a 64-hex PSK
    with pytest.raises(ConfigError, match="has 7"):
        boardconfig.check_passphrase("x" * 7)
    with pytest.raises(ConfigError, match=r"^wifi.passphrase: a WPA passphrase has 8 to 63 characters; "
                                          r"this one has 80\.$"):
        boardconfig.check_passphrase("x" * 80)
    with pytest.raises(ConfigError, match="64 hex digits"):
        boardconfig.check_passphrase("g" * 64)
    with pytest.raises(ConfigError, match="character 9 is not one"):
        boardconfig.check_passphrase("abcdefgh\u00e9")


def test_ssh_keys_accepted() -> None:
    for kind in ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"):
        boardconfig.check_ssh_key(f"{kind} {ssh_blob(kind)}")
    boardconfig.check_ssh_key(f'from="10.0.0.0/8,192.168.1.1",command="echo hi there" {ED25519}')


def test_a_real_ssh_keygen_key_is_accepted(tmp_path: Path) -> None:
    keygen = Path("/usr/bin/ssh-keygen")
    if not keygen.exists():
        pytest.skip("ssh-keygen is not installed")
    import subprocess
    subprocess.run([str(keygen), "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    boardconfig.check_ssh_key((tmp_path / "k.pub").read_text())
    with pytest.raises(ConfigError, match="PRIVATE key"):
        boardconfig.check_ssh_key((tmp_path / "k").read_text())


@pytest.mark.parametrize(("line", "message"), [
    ("", "cannot be empty"),
    ("AAAAC3NzaC1lZDI1NTE5AAAAI alice", "starts with its type"),
    (f"ssh-ed25519 {ssh_blob('ssh-ed25519')[:-3]}", "not valid base64"),
    (f"ssh-rsa {ssh_blob('ssh-ed25519')}", "says ssh-rsa but its data is a 'ssh-ed25519' key"),
    ("ssh-ed25519", "no key data"),
    (f"ssh-dss {ssh_blob('ssh-dss')}", "DSA keys"),
    ("ssh-ed25519 AAAA\nC3Nz", "one line"),
    ("---- BEGIN SSH2 PUBLIC KEY ----\nComment: x", "ssh-keygen -i"),
    (f"ssh-ed25519 {base64.b64encode(b'xx').decode()}", "not an SSH key"),
])
def test_wrong_format_ssh_keys(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        boardconfig.check_ssh_key(line)
    assert info.value.problems[0].startswith("ssh.authorized_keys: ")


def test_a_pasted_private_key_gets_its_own_message_without_echoing_it() -> None:
    secret = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
    text = f"ssh:\n  authorized_keys: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    {secret}\n" \
           "    -----END OPENSSH PRIVATE KEY-----\n"
    found = problems(text)
    assert all("PRIVATE key" in p for p in found)
    assert not any(secret in p for p in found)


def test_authorized_keys_as_one_block_of_lines() -> None:
    cfg = boardconfig.parse_text(f"ssh:\n  authorized_keys: |\n    # mine\n    {ED25519}\n\n    {RSA}\n")
    assert cfg.ssh_authorized_keys == (ED25519, RSA)


@pytest.mark.parametrize(("value", "message"), [
    ("ZZ", "is not one"), ("gb", "capitals: 'GB'"), ("UK", "did you mean 'GB'"), ("GBR", "is not one"),
])
def test_bad_country(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        boardconfig.check_country(value)


def test_good_countries() -> None:
    for cc in ("GB", "US", "DE", "NO", "JP", "AX"):
        boardconfig.check_country(cc)


@pytest.mark.parametrize(("value", "message"), [
    ("", "cannot be empty"), ("Pi-1", "write 'pi-1'"), ("pi_1", "has '_'"), ("-pi", "hyphen"),
    ("pi.local", "without a domain"), ("a" * 64, "at most 63"), ("localhost", "cannot name a board"),
])
def test_bad_hostnames(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        boardconfig.check_hostname(value)


@pytest.mark.parametrize(("value", "message"), [
    ("192.168.1.20", "prefix length too"), ("192.168.1.300/24", "not an IPv4 address"),
    ("192.168.1.20/33", "from 8 to 32"), ("192.168.1.0/24", "network address"),
    ("192.168.1.255/24", "broadcast address"), ("127.0.0.2/8", "cannot be a board's"),
])
def test_bad_addresses(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        boardconfig.check_address(value)


def test_gateway_outside_the_network() -> None:
    assert "outside the board's network 192.168.1.0/24" in only_problem(
        "network:\n  address: 192.168.1.20/24\n  gateway: 192.168.2.1\n")
    assert "a DNS server is given by its IP address" in only_problem(
        "network:\n  address: 192.168.1.20/24\n  dns: [dns.google]\n")


def test_timezones(tmp_path: Path) -> None:
    (tmp_path / "Europe").mkdir()
    (tmp_path / "Europe" / "London").write_bytes(b"TZif")
    (tmp_path / "UTC").write_bytes(b"TZif")
    boardconfig.check_timezone("Europe/London", zoneinfo=tmp_path)
    boardconfig.check_timezone("UTC", zoneinfo=tmp_path)
    with pytest.raises(ConfigError, match="Did you mean 'Europe/London'"):
        boardconfig.check_timezone("europe/london", zoneinfo=tmp_path)
    with pytest.raises(ConfigError, match="no time zone 'Europe/Paris'"):
        boardconfig.check_timezone("Europe/Paris", zoneinfo=tmp_path)
    with pytest.raises(ConfigError, match="Area/City"):
        boardconfig.check_timezone("London", zoneinfo=tmp_path)
    with pytest.raises(ConfigError, match="Area/City"):
        boardconfig.check_timezone("../../etc/passwd", zoneinfo=tmp_path)
    # without a zoneinfo directory only the shape is checked
    boardconfig.check_timezone("Europe/Paris", zoneinfo=tmp_path / "absent")


@pytest.mark.parametrize(("value", "message"), [
    ("root", "system account"), ("Alice", "write 'alice'"), ("1pi", "starts with a lowercase letter"),
    ("a" * 33, "at most 32"), ("al ice", "starts with a lowercase letter"),
])
def test_bad_users(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        boardconfig.check_user(value)


def test_good_users_and_masters() -> None:
    boardconfig.check_user("pi")
    boardconfig.check_user("deploy_bot-2")
    for master in ("192.168.1.10", "pi-1.local", "pi-1:6443", "https://10.0.0.1:6443", "[fd00::1]:6443"):
        boardconfig.check_master(master)
    with pytest.raises(ConfigError, match="neither an IP address nor a host name"):
        boardconfig.check_master("pi_1")
    with pytest.raises(ConfigError, match="HOST or HOST:PORT"):
        boardconfig.check_master("http://pi-1")


def test_check_token() -> None:
    boardconfig.check_token(TOKEN)
    with pytest.raises(ConfigError, match=r"^token: a join token starts with 'pikube-'"):
        boardconfig.check_token("K10abc::def")
