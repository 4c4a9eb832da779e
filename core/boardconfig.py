"""The one schema for `pikube.yaml`: what a user writes on the card, what the board applies, what flash checks.

The same keys live in three places: `pikube.yaml` on the image's FAT partition
(read by `pikube firstboot`), `/etc/pikube/config.yaml` (read by
`enable-master`, `enable-worker` and `pikube agent`), and the options of
`pikube flash` / `pikube preseed`, which write the first file. The field's
most reported failures are customisation silently not applied: a Wi-Fi
network without a country, a mis-pasted SSH key, a passphrase of the wrong
length, a hostname with a capital letter. So this module refuses all of them
before anything is written or applied, and says in one sentence per problem
which key is wrong and what to write instead; it reports every problem at
once, so a user fixes the file in one go rather than one boot per typo.

Two details of the YAML reading matter to users:

- Plain scalars are read as text, never as numbers or booleans (only
  `null`, `~` and an empty value mean "not given"). YAML 1.1 would read
  `country: NO` as false (the "Norway problem"), `passphrase: 0123456712` as an
  octal number and `hostname: yes` as true; here each is the text as typed.
- Aliases are refused and the file is bounded (64 KiB): a board parses
  whatever was put on its card, before anything else runs.

Every `check_*` validator can be used alone (flash validates each option as
it is given) and raises `ConfigError` naming the key. Messages never echo a
secret (passphrase, token, a pasted private key).

Only the standard library, PyYAML and `core.jointoken` are imported: the
agent reads `/etc/pikube/config.yaml` through this module.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
import string
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from core import jointoken

__all__ = [
    "MAX_BYTES",
    "ROLES",
    "SCHEMA_VERSION",
    "BoardConfig",
    "ConfigError",
    "Network",
    "Wifi",
    "check_address",
    "check_country",
    "check_gateway",
    "check_hostname",
    "check_master",
    "check_nameserver",
    "check_passphrase",
    "check_ssh_key",
    "check_ssid",
    "check_timezone",
    "check_token",
    "check_user",
    "from_mapping",
    "parse_text",
    "to_yaml",
    "without_secrets",
]

SCHEMA_VERSION = 1
MAX_BYTES = 64 * 1024
ROLES = ("master", "worker", "none")
ZONEINFO = Path("/usr/share/zoneinfo")


class ConfigError(ValueError):
    """A board configuration is invalid; `problems` holds one plain sentence per problem, each naming its key."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True)
class Wifi:
    """A Wi-Fi network to join; `passphrase` None means an open network (or one already stored on the board)."""

    ssid: str
    passphrase: str | None
    country: str

    def __repr__(self) -> str:
        shown = None if self.passphrase is None else "<hidden>"
        return f"Wifi(ssid={self.ssid!r}, passphrase={shown}, country={self.country!r})"


@dataclass(frozen=True)
class Network:
    """A static IPv4 address for the wired interface ("A.B.C.D/N"); no `network` key at all means DHCP."""

    address: str
    gateway: str | None
    dns: tuple[str, ...]


@dataclass(frozen=True)
class BoardConfig:
    """Everything `pikube.yaml` can say about a board; None / () means "not given, leave it as it is"."""

    hostname: str | None = None
    role: str | None = None  # "master" | "worker" | "none"
    master: str | None = None  # host or host:port (a worker's master)
    token: str | None = None  # a worker's join token
    user: str | None = None
    ssh_authorized_keys: tuple[str, ...] = ()
    wifi: Wifi | None = None
    network: Network | None = None
    timezone: str | None = None

    def __repr__(self) -> str:
        fields = [f"hostname={self.hostname!r}", f"role={self.role!r}", f"master={self.master!r}",
                  f"token={None if self.token is None else '<hidden>'}", f"user={self.user!r}",
                  f"ssh_authorized_keys=<{len(self.ssh_authorized_keys)} keys>", f"wifi={self.wifi!r}",
                  f"network={self.network!r}", f"timezone={self.timezone!r}"]
        return f"BoardConfig({', '.join(fields)})"


# -- single-value validators ---------------------------------------------------------------------

_HOSTNAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def _fail(key: str, sentence: str) -> ConfigError:
    return ConfigError([f"{key}: {sentence}"])


def check_hostname(value: str, key: str = "hostname") -> None:
    """A DNS label: 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen."""
    if not value:
        raise _fail(key, "a host name cannot be empty.")
    if len(value) > 63:
        raise _fail(key, f"a host name has at most 63 characters; this one has {len(value)}.")
    if _HOSTNAME_RE.fullmatch(value):
        if value == "localhost":
            raise _fail(key, "'localhost' cannot name a board; choose a name such as pi-1.")
        return
    lowered = value.lower()
    if _HOSTNAME_RE.fullmatch(lowered):
        raise _fail(key, f"a host name is written in lowercase: write {lowered!r}.")
    if "." in value:
        raise _fail(key, f"give the board's own name without a domain (the part before the first dot), "
                         f"not {value!r}.")
    if value.startswith("-") or value.endswith("-"):
        raise _fail(key, f"a host name cannot start or end with a hyphen: {value!r}.")
    bad = next(c for c in value if not (c.isascii() and (c.isalnum() or c == "-")))
    raise _fail(key, f"a host name holds only lowercase letters, digits and hyphens; {value!r} has {bad!r}.")


_KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
_PRIVATE_MARKERS = ("PRIVATE KEY", "PuTTY-User-Key-File")


def _split_options(line: str) -> tuple[str, str]:
    """Split an authorized_keys line into its options prefix and the rest (quotes may hold spaces)."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c in " \t" and not quoted:
            return line[:i], line[i:].lstrip()
    return line, ""


def check_ssh_key(value: str, key: str = "ssh.authorized_keys") -> None:
    """One authorized_keys line: `[options] TYPE BASE64 [comment]`, the blob decoding to a key of TYPE."""
    line = value.strip()
    if any(marker in line for marker in _PRIVATE_MARKERS):
        raise _fail(key, "this is a PRIVATE key: never copy it to a board. Give the public key instead (the "
                         "one line in the .pub file, e.g. ~/.ssh/id_ed25519.pub), and as this private key "
                         "was written into a file, consider replacing it.")
    if line.startswith("---- BEGIN SSH2 PUBLIC KEY"):
        raise _fail(key, "this public key is in the SSH2 (PuTTY) format; convert it to one OpenSSH line with "
                         "`ssh-keygen -i -f FILE`.")
    if not line:
        raise _fail(key, "an SSH key cannot be empty.")
    if "\n" in line or "\r" in line:
        raise _fail(key, "an SSH public key is one line (TYPE BASE64 COMMENT); this one is broken over "
                         "several lines, perhaps by copying it from a terminal.")
    first = line.split(None, 1)[0]
    if first == "ssh-dss":
        raise _fail(key, "DSA keys (ssh-dss) are refused by OpenSSH since version 7.0; make an ed25519 key "
                         "with `ssh-keygen -t ed25519`.")
    if first not in _KEY_TYPES:
        _options, rest = _split_options(line)
        if not rest or rest.split(None, 1)[0] not in _KEY_TYPES:
            shown = first if len(first) <= 24 else first[:8] + "..."  # a pasted secret is not echoed
            raise _fail(key, f"an SSH public key starts with its type ({', '.join(_KEY_TYPES[:5])} or "
                             f"sk-...@openssh.com), not {shown!r}.")
        line = rest
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise _fail(key, f"the {parts[0]} key has no key data after its type.")
    kind, blob_text = parts[0], parts[1]
    try:
        blob = base64.b64decode(blob_text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(key, f"the data of the {kind} key is not valid base64: it was cut or changed while "
                         "copying; copy the whole line of the .pub file again.") from None
    try:
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4:4 + length].decode("ascii")
        if len(embedded) != length:
            raise ValueError("short")
    except (struct.error, UnicodeDecodeError, ValueError):
        raise _fail(key, f"the data of the {kind} key is not an SSH key: it was cut or changed while "
                         "copying; copy the whole line of the .pub file again.") from None
    if embedded != kind:
        raise _fail(key, f"the line says {kind} but its data is a {embedded!r} key: the type or the data "
                         "was changed; copy the whole line of the .pub file again.")
    if len(blob) <= 4 + length:
        raise _fail(key, f"the data of the {kind} key holds no key: copy the whole line of the .pub file again.")


_HEX = frozenset(string.hexdigits)


def check_passphrase(value: str, key: str = "wifi.passphrase") -> None:
    """A WPA passphrase of 8 to 63 printable ASCII characters, or a PSK of exactly 64 hex digits."""
    if len(value) == 64:
        if all(c in _HEX for c in value):
            return
        raise _fail(key, "64 characters are read as a raw WPA key (PSK), which is 64 hex digits (0-9, a-f); "
                         "this one has other characters. A passphrase has 8 to 63 characters.")
    if not 8 <= len(value) <= 63:
        raise _fail(key, f"a WPA passphrase has 8 to 63 characters; this one has {len(value)}.")
    for i, c in enumerate(value, start=1):
        if not 32 <= ord(c) <= 126:
            raise _fail(key, f"a WPA passphrase holds only printable ASCII characters; character {i} is not one.")


def check_ssid(value: str, key: str = "wifi.ssid") -> None:
    """A Wi-Fi network name: 1 to 32 bytes (as UTF-8)."""
    size = len(value.encode("utf-8"))
    if size == 0:
        raise _fail(key, "give the name of the Wi-Fi network (its SSID).")
    if size > 32:
        raise _fail(key, f"a Wi-Fi network name (SSID) has at most 32 bytes; this one has {size}.")


_COUNTRY_CODES = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO
FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE
JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO
MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM
TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
_COUNTRIES = frozenset(_COUNTRY_CODES.split())
_COUNTRY_MIXUPS = {"UK": "GB", "EN": "GB", "EL": "GR"}


def check_country(value: str, key: str = "wifi.country") -> None:
    """An ISO 3166-1 alpha-2 country code in capitals (it sets the Wi-Fi regulatory domain)."""
    if value in _COUNTRIES:
        return
    if value.upper() in _COUNTRIES:
        raise _fail(key, f"write the country code in capitals: {value.upper()!r}.")
    if value.upper() in _COUNTRY_MIXUPS:
        raise _fail(key, f"{value!r} is not an ISO 3166-1 country code; did you mean "
                         f"{_COUNTRY_MIXUPS[value.upper()]!r}?")
    raise _fail(key, f"the Wi-Fi country is a two-letter ISO 3166-1 code such as GB, US or DE (it sets which "
                     f"radio channels are allowed); {value!r} is not one.")


def _ipv4(value: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        return None


def check_address(value: str, key: str = "network.address") -> None:
    """A static IPv4 interface address with its prefix length, "A.B.C.D/N" (N from 8 to 32)."""
    if "/" not in value:
        if _ipv4(value) is not None:
            raise _fail(key, f"give the prefix length too, as in {value}/24.")
        raise _fail(key, f"an address is written A.B.C.D/N, as in 192.168.1.20/24; {value!r} is not one.")
    addr_text, _, prefix_text = value.partition("/")
    addr = _ipv4(addr_text)
    if addr is None:
        raise _fail(key, f"an address is written A.B.C.D/N, as in 192.168.1.20/24; {addr_text!r} is not "
                         "an IPv4 address.")
    if not prefix_text.isdigit() or not 8 <= int(prefix_text) <= 32:
        raise _fail(key, f"the prefix length after the / is a number from 8 to 32 (24 on most home "
                         f"networks), not {prefix_text!r}.")
    iface = ipaddress.IPv4Interface(f"{addr}/{int(prefix_text)}")
    if addr.is_loopback or addr.is_multicast or addr.is_unspecified or addr.is_link_local:
        raise _fail(key, f"{addr} cannot be a board's LAN address.")
    net = iface.network
    if net.prefixlen <= 30 and addr in (net.network_address, net.broadcast_address):
        which = "network" if addr == net.network_address else "broadcast"
        raise _fail(key, f"{addr} is the {which} address of {net}, not one a board can take.")


def check_gateway(value: str, address: str | None = None, key: str = "network.gateway") -> None:
    """An IPv4 gateway, inside `address`'s network when that is given."""
    gw = _ipv4(value)
    if gw is None:
        raise _fail(key, f"a gateway is an IPv4 address such as 192.168.1.1, not {value!r}.")
    if address is not None:
        try:
            iface = ipaddress.IPv4Interface(address)
        except ValueError:
            return  # the address itself is reported
        if gw not in iface.network:
            raise _fail(key, f"the gateway {gw} is outside the board's network {iface.network}; it must be "
                             "on the same network as network.address.")
        if gw == iface.ip:
            raise _fail(key, f"the gateway {gw} is the board's own address.")


def check_nameserver(value: str, key: str = "network.dns") -> None:
    """A DNS server's IP address (IPv4 or IPv6)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _fail(key, f"a DNS server is given by its IP address, such as 192.168.1.1 or 1.1.1.1, not "
                         f"{value!r}.") from None


_TZ_PART_RE = re.compile(r"[A-Za-z0-9_+-]+")


def _zone_names(zoneinfo: Path) -> list[str]:
    names = []
    for p in zoneinfo.rglob("*"):
        rel = p.relative_to(zoneinfo).as_posix()
        if p.is_file() and "/" in rel and not rel.startswith(("posix/", "right/")):
            names.append(rel)
    return names


def check_timezone(value: str, key: str = "timezone", zoneinfo: Path = ZONEINFO) -> None:
    """A tz database name, Area/City such as Europe/London (or UTC); it must exist where zoneinfo is installed."""
    parts = value.split("/")
    shaped = (value in ("UTC", "Etc/UTC") or (len(parts) >= 2 and parts[0][:1].isalpha()
                                               and all(_TZ_PART_RE.fullmatch(p) for p in parts)))
    if not shaped:
        raise _fail(key, f"a time zone is written Area/City, such as Europe/London or America/New_York "
                         f"(or UTC), not {value!r}.")
    if not zoneinfo.is_dir() or (zoneinfo / value).is_file():
        return
    lowered = value.lower()
    names = _zone_names(zoneinfo)
    same = [n for n in names if n.lower() == lowered]
    close = same or difflib.get_close_matches(value, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise _fail(key, f"there is no time zone {value!r}.{hint}")


def check_token(value: str, key: str = "token") -> None:
    """A join token as `pikube token create` prints it (core/jointoken.py); the message never echoes it."""
    try:
        jointoken.parse(value)
    except ValueError as exc:
        raise _fail(key, f"{exc}; copy the token `enable-master` or `pikube token create` printed.") from None


_USER_RE = re.compile(r"[a-z_][a-z0-9_-]*\$?")
# Accounts Debian's base-passwd and the image's packages create: a first-boot user must be a new person.
_SYSTEM_USER_NAMES = """
root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats nobody _apt
systemd-network systemd-resolve systemd-timesync systemd-journal messagebus sshd avahi ntp chrony polkitd
dnsmasq docker pikube tss
"""
_SYSTEM_USERS = frozenset(_SYSTEM_USER_NAMES.split())


def check_user(value: str, key: str = "user") -> None:
    """A new login name by Debian's rules (adduser's NAME_REGEX, at most 32 characters), not a system account."""
    if not value:
        raise _fail(key, "a user name cannot be empty.")
    if len(value) > 32:
        raise _fail(key, f"a user name has at most 32 characters; this one has {len(value)}.")
    if value in _SYSTEM_USERS:
        raise _fail(key, f"{value!r} is a system account; choose a name for a person, such as pi.")
    if not _USER_RE.fullmatch(value):
        if _USER_RE.fullmatch(value.lower()):
            raise _fail(key, f"a user name is written in lowercase: write {value.lower()!r}.")
        raise _fail(key, f"a user name starts with a lowercase letter and holds only lowercase letters, "
                         f"digits, '-' and '_'; {value!r} does not.")


def check_master(value: str, key: str = "master") -> None:
    """The master's address: a host name or IP, optionally with :port (https:// tolerated)."""
    try:
        host, _port = jointoken.split_server(value)
    except ValueError as exc:
        raise _fail(key, f"give the master as HOST or HOST:PORT, such as 192.168.1.10 or pi-1.local ({exc}).") \
            from None
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", label) for label in labels):
        raise _fail(key, f"{host!r} is neither an IP address nor a host name.")


# -- the whole file ------------------------------------------------------------------------------

_TOP_KEYS = ("version", "hostname", "role", "master", "token", "user", "ssh", "wifi", "network", "timezone")
_SUB_KEYS = {"ssh": ("authorized_keys",), "wifi": ("ssid", "passphrase", "country"),
             "network": ("address", "gateway", "dns")}
# Names users write for a key, from other tools' preseed files.
_ALIASES = {
    "password": "wifi.passphrase", "pasword": "wifi.passphrase", "passwd": "wifi.passphrase",
    "pass": "wifi.passphrase", "psk": "wifi.passphrase", "wifi_password": "wifi.passphrase",
    "authorized_keys": "ssh.authorized_keys", "ssh_authorized_keys": "ssh.authorized_keys",
    "ssh_keys": "ssh.authorized_keys", "keys": "ssh.authorized_keys", "ip": "network.address",
    "static_ip": "network.address", "addr": "network.address", "nameservers": "network.dns",
    "nameserver": "network.dns", "server": "master", "join_token": "token", "username": "user",
    "tz": "timezone", "name": "hostname", "host": "hostname", "regdomain": "wifi.country",
}


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping of keys"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


class _Reader:
    """Collects the problems of one mapping walk, so all of them are reported together."""

    def __init__(self, secrets_removed: bool) -> None:
        self.problems: list[str] = []
        self.secrets_removed = secrets_removed

    def check(self, fn: Any, *args: Any, **kwargs: Any) -> bool:
        try:
            fn(*args, **kwargs)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return False
        return True

    def unknown_keys(self, data: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for k in data:
            if not isinstance(k, str):
                self.problems.append(f"{prefix}{k!r}: keys are names such as {allowed[0]}, not {_describe(k)}.")
                continue
            if k in allowed:
                continue
            full = f"{prefix}{k}"
            guess = _ALIASES.get(k.lower().replace("-", "_"))
            if guess is None or guess == full:
                close = difflib.get_close_matches(k.lower(), allowed, n=1, cutoff=0.5)
                guess = f"{prefix}{close[0]}" if close else None
            hint = f" Did you mean {guess}?" if guess else f" The keys here are: {', '.join(allowed)}."
            self.problems.append(f"{full}: unknown key.{hint}")

    def text(self, data: Mapping[Any, Any], name: str, key: str) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(f"{key}: expected text, found {_describe(value)}.")
            return None
        return value

    def section(self, data: Mapping[Any, Any], name: str) -> Mapping[Any, Any] | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            subs = ", ".join(_SUB_KEYS[name])
            self.problems.append(f"{name}: expected a mapping with the keys {subs}, found {_describe(value)}.")
            return None
        self.unknown_keys(value, _SUB_KEYS[name], f"{name}.")
        return value

    def text_list(self, data: Mapping[Any, Any], name: str, key: str, *, lines: bool) -> tuple[str, ...]:
        value = data.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            items: list[Any] = (
                [ln for ln in value.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
                if lines else [value])
        elif isinstance(value, list):
            items = value
        else:
            self.problems.append(f"{key}: expected a list, found {_describe(value)}.")
            return ()
        out = []
        for i, item in enumerate(items, start=1):
            if not isinstance(item, str):
                self.problems.append(f"{key}: entry {i} should be text, found {_describe(item)}.")
            else:
                out.append(item.strip())
        return tuple(out)


def _read_version(data: Mapping[Any, Any], problems: list[str]) -> None:
    version = data.get("version")
    if version is None:
        return
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int):
        problems.append(f"version: the schema version is a number ({SCHEMA_VERSION}), not {_describe(version)}.")
    elif version != SCHEMA_VERSION:
        newer = " (written for a newer pikube?)" if version > SCHEMA_VERSION else ""
        problems.append(f"version: this pikube reads version {SCHEMA_VERSION} of pikube.yaml; this file is "
                        f"version {version}{newer}.")


def _read_wifi(r: _Reader, section: Mapping[Any, Any]) -> Wifi | None:
    ssid = r.text(section, "ssid", "wifi.ssid")
    passphrase = r.text(section, "passphrase", "wifi.passphrase")
    country = r.text(section, "country", "wifi.country")
    ok = True
    if ssid is None:
        if section.get("ssid") is None:
            r.problems.append("wifi.ssid: give the name of the Wi-Fi network to join.")
        ok = False
    else:
        ok &= r.check(check_ssid, ssid)
    if passphrase is not None:
        ok &= r.check(check_passphrase, passphrase)
    if country is None:
        if section.get("country") is None:
            r.problems.append("wifi.country: give the two-letter country code (such as GB, US or DE): without "
                              "it the radio stays off or uses the most restrictive channels.")
        ok = False
    else:
        ok &= r.check(check_country, country)
    if not ok or ssid is None or country is None:
        return None
    return Wifi(ssid=ssid, passphrase=passphrase, country=country)


def _read_network(r: _Reader, section: Mapping[Any, Any]) -> Network | None:
    address = r.text(section, "address", "network.address")
    gateway = r.text(section, "gateway", "network.gateway")
    dns = r.text_list(section, "dns", "network.dns", lines=False)
    ok = True
    if address is None:
        if section.get("address") is None:
            r.problems.append("network.address: a static network needs the board's address, as in "
                              "192.168.1.20/24 (leave out the whole network section for DHCP).")
        ok = False
    else:
        ok &= r.check(check_address, address)
    if gateway is not None:
        ok &= r.check(check_gateway, gateway, address if ok else None)
    for server in dns:
        ok &= r.check(check_nameserver, server)
    if not ok or address is None:
        return None
    return Network(address=address, gateway=gateway, dns=dns)


def _check_roles(r: _Reader, cfg: BoardConfig, data: Mapping[Any, Any]) -> None:
    role = cfg.role
    has_master = data.get("master") is not None
    has_token = data.get("token") is not None
    if role == "worker":
        if not has_master:
            r.problems.append("master: a worker needs the address of its master (master: 192.168.1.10).")
        if not has_token and not r.secrets_removed:
            r.problems.append("token: a worker needs the join token that `enable-master` printed "
                              "(or `pikube token create` prints on the master).")
    elif role == "master":
        for name, given in (("master", has_master), ("token", has_token)):
            if given:
                r.problems.append(f"{name}: a master board makes its own cluster; {name} is only for "
                                  "role: worker.")
    elif role in ("none", None):
        for name, given in (("master", has_master), ("token", has_token)):
            if given:
                r.problems.append(f"{name}: is only used with role: worker; add role: worker, or remove it.")


def from_mapping(data: Mapping[str, Any], source: str = "pikube.yaml", *,
                 secrets_removed: bool = False) -> BoardConfig:
    """Validate a parsed mapping (YAML, or flash's options) into a BoardConfig; ConfigError lists every problem.

    `secrets_removed` accepts a worker without a token: the file a board rewrote
    after applying it (`without_secrets`), where the join has already happened.
    """
    if not isinstance(data, Mapping):
        raise ConfigError([f"{source}: the file should be a mapping of keys (hostname: pi-1, ...), "
                           f"found {_describe(data)}."])
    r = _Reader(secrets_removed)
    r.unknown_keys(data, _TOP_KEYS, "")
    _read_version(data, r.problems)

    hostname = r.text(data, "hostname", "hostname")
    if hostname is not None and not r.check(check_hostname, hostname):
        hostname = None
    role = r.text(data, "role", "role")
    if role is not None and role not in ROLES:
        r.problems.append(f"role: is master, worker or none, not {role!r}.")
        role = None
    master = r.text(data, "master", "master")
    if master is not None and not r.check(check_master, master):
        master = None
    token = r.text(data, "token", "token")
    if token is not None and not r.check(check_token, token):
        token = None
    user = r.text(data, "user", "user")
    if user is not None and not r.check(check_user, user):
        user = None
    keys: tuple[str, ...] = ()
    ssh = r.section(data, "ssh")
    if ssh is not None:
        keys = r.text_list(ssh, "authorized_keys", "ssh.authorized_keys", lines=True)
        if any(marker in line for line in keys for marker in _PRIVATE_MARKERS):
            r.check(check_ssh_key, "\n".join(keys))  # one message for the whole private key, its lines unechoed
            keys = ()
        for i, line in enumerate(keys, start=1):
            name = "ssh.authorized_keys" if len(keys) == 1 else f"ssh.authorized_keys[{i}]"
            r.check(check_ssh_key, line, name)
    wifi_section = r.section(data, "wifi")
    wifi = _read_wifi(r, wifi_section) if wifi_section is not None else None
    net_section = r.section(data, "network")
    network = _read_network(r, net_section) if net_section is not None else None
    timezone = r.text(data, "timezone", "timezone")
    if timezone is not None and not r.check(check_timezone, timezone):
        timezone = None

    cfg = BoardConfig(hostname=hostname, role=role, master=master, token=token, user=user,
                      ssh_authorized_keys=keys, wifi=wifi, network=network, timezone=timezone)
    if role is not None or data.get("role") is None:
        _check_roles(r, cfg, data)
    if r.problems:
        raise ConfigError(r.problems)
    return cfg


# -- YAML ----------------------------------------------------------------------------------------

class _Resolver(yaml.resolver.BaseResolver):
    """Plain scalars are text; only null, ~ and an empty value mean None (no booleans, numbers or dates)."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
              yaml.constructor.SafeConstructor, _Resolver):
    """PyYAML's safe loader with the text-only resolver, no aliases, and duplicate keys noted."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self.duplicates: list[str] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here",
                                              event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        if isinstance(node, yaml.nodes.MappingNode):
            for key_node, _value in node.value:
                k = key_node.value
                if isinstance(k, str) and k in seen:
                    self.duplicates.append(f"{k}: the key is given twice (line {key_node.start_mark.line + 1} "
                                           "repeats it); keep one.")
                seen.add(k)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    hint = ""
    if "\t" in problem or "\\t" in problem:
        hint = " Indent with spaces, not tabs."
    elif "mapping values are not allowed" in problem:
        hint = " A value holding ': ' must be put in quotes."
    return ConfigError([f"{source}: this is not valid YAML{where}: {problem}.{hint}"])


def parse_text(text: str, source: str = "pikube.yaml", *, secrets_removed: bool = False) -> BoardConfig:
    """Parse and validate the text of a pikube.yaml; ConfigError names every problem at once."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ConfigError([f"{source}: the file has {size} bytes; a pikube.yaml has at most {MAX_BYTES}."])
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    try:
        cfg = from_mapping(data, source, secrets_removed=secrets_removed)
    except ConfigError as exc:
        raise ConfigError(loader.duplicates + exc.problems) from None
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return cfg


HEADER = """\
# pikube board configuration (schema version {version}); the keys are explained in docs/firstboot.md.
# Read on first boot from the boot partition (pikube.yaml) and by enable-master, enable-worker and
# pikube agent from /etc/pikube/config.yaml.
"""


def to_mapping(cfg: BoardConfig) -> dict[str, Any]:
    """The canonical mapping of `cfg` (keys in schema order, absent values left out)."""
    out: dict[str, Any] = {"version": SCHEMA_VERSION}
    for name in ("hostname", "role", "master", "token", "user"):
        value = getattr(cfg, name)
        if value is not None:
            out[name] = value
    if cfg.ssh_authorized_keys:
        out["ssh"] = {"authorized_keys": list(cfg.ssh_authorized_keys)}
    if cfg.wifi is not None:
        wifi: dict[str, Any] = {"ssid": cfg.wifi.ssid}
        if cfg.wifi.passphrase is not None:
            wifi["passphrase"] = cfg.wifi.passphrase
        wifi["country"] = cfg.wifi.country
        out["wifi"] = wifi
    if cfg.network is not None:
        net: dict[str, Any] = {"address": cfg.network.address}
        if cfg.network.gateway is not None:
            net["gateway"] = cfg.network.gateway
        if cfg.network.dns:
            net["dns"] = list(cfg.network.dns)
        out["network"] = net
    if cfg.timezone is not None:
        out["timezone"] = cfg.timezone
    return out


def to_yaml(cfg: BoardConfig) -> str:
    """Canonical YAML for `cfg`, with a comment header; `parse_text(to_yaml(cfg)) == cfg`."""
    body = yaml.safe_dump(to_mapping(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True,
                          width=10_000)
    return HEADER.format(version=SCHEMA_VERSION) + body


def without_secrets(cfg: BoardConfig) -> BoardConfig:
    """`cfg` without the Wi-Fi passphrase and the join token: what stays on the FAT after first boot."""
    wifi = replace(cfg.wifi, passphrase=None) if cfg.wifi is not None else None
    return replace(cfg, token=None, wifi=wifi)
