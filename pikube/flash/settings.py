"""The board settings `pikube flash` / `pikube preseed` write: flags merged over `--config FILE`.

The flags are turned into the same mapping a `pikube.yaml` holds and checked
by `core.boardconfig.from_mapping`, the code the board itself runs at first
boot, so a card is never written with a value the board would reject. The
config file is read with boardconfig's own YAML reading (plain scalars as
text, no aliases, bounded) but not validated alone, so a shared file may
leave out what the flags give per card (a token, an address). Problems are
reported with the flag that set the key, when a flag did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from core import boardconfig
from core.boardconfig import BoardConfig, ConfigError

# Which flag sets which key: used to name the flag in a problem.
FLAG_OF_KEY = {
    "hostname": "--hostname", "role": "--role", "master": "--master", "token": "--token", "user": "--user",
    "ssh.authorized_keys": "--ssh-key", "wifi.ssid": "--wifi-ssid", "wifi.passphrase": "--wifi-password",
    "wifi.country": "--wifi-country", "network.address": "--static-ip", "network.gateway": "--gateway",
    "network.dns": "--dns", "timezone": "--timezone",
}


@dataclass(frozen=True)
class Flags:
    """The settings given on the command line; None / empty means not given."""

    hostname: str | None = None
    role: str | None = None
    master: str | None = None
    token: str | None = None
    user: str | None = None
    ssh_keys: tuple[str, ...] = ()  # key lines, already read from the --ssh-key files
    wifi_ssid: str | None = None
    wifi_password: str | None = None
    wifi_country: str | None = None
    static_ip: str | None = None
    gateway: str | None = None
    dns: tuple[str, ...] = ()
    timezone: str | None = None

    def to_mapping(self) -> dict[str, Any]:
        """The flags as a pikube.yaml mapping (only what was given)."""
        out: dict[str, Any] = {}
        for name in ("hostname", "role", "master", "token", "user", "timezone"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.ssh_keys:
            out["ssh"] = {"authorized_keys": list(self.ssh_keys)}
        wifi = {k: v for k, v in (("ssid", self.wifi_ssid), ("passphrase", self.wifi_password),
                                  ("country", self.wifi_country)) if v is not None}
        if wifi:
            out["wifi"] = wifi
        network: dict[str, Any] = {k: v for k, v in (("address", self.static_ip), ("gateway", self.gateway))
                                   if v is not None}
        if self.dns:
            network["dns"] = list(self.dns)
        if network:
            out["network"] = network
        return out


def read_key_file(path: Path) -> tuple[str, ...]:
    """The key lines of an --ssh-key file (a .pub file, or an authorized_keys file with several)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        hint = " (give the .pub file, such as ~/.ssh/id_ed25519.pub)" if not str(path).endswith(".pub") else ""
        raise ConfigError([f"--ssh-key: {path} does not exist{hint}."]) from None
    except OSError as exc:
        raise ConfigError([f"--ssh-key: {path} cannot be read: {exc.strerror}."]) from None
    if "PRIVATE KEY" in text or "PuTTY-User-Key-File" in text:
        raise ConfigError([f"--ssh-key: {path} is a PRIVATE key: never copy it to a board; give the public key "
                           f"({path}.pub)."])
    lines = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if not lines:
        raise ConfigError([f"--ssh-key: {path} holds no key."])
    return lines


def load_file(path: Path) -> dict[str, Any]:
    """The mapping in a pikube.yaml-style file, read as the board reads it but not yet validated."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"--config: {path} cannot be read: {exc.strerror}."]) from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > boardconfig.MAX_BYTES:
        raise ConfigError([f"{path}: the file has {size} bytes; a pikube.yaml has at most {boardconfig.MAX_BYTES}."])
    # boardconfig's loader (text-only scalars, no aliases, duplicate keys noted), as parse_text uses it.
    loader = boardconfig._Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise boardconfig._yaml_error(exc, str(path)) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError([f"{path}: {d}" for d in loader.duplicates])
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the file should be a mapping of keys (hostname: pi-1, ...)."])
    return data


def merge(under: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `under`, section by section (a flag's wifi.ssid keeps the file's wifi.country)."""
    out = dict(under)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _has(mapping: Mapping[str, Any], key: str) -> bool:
    section, _, sub = key.partition(".")
    value = mapping.get(section)
    if not sub:
        return value is not None
    return isinstance(value, Mapping) and value.get(sub) is not None


def _name_flags(problems: Sequence[str], given: Mapping[str, Any], merged: Mapping[str, Any]) -> list[str]:
    """Add the flag to a problem about a key a flag set, or a missing key a flag can set."""
    named = []
    for problem in problems:
        key = problem.split(":", 1)[0].split("[", 1)[0]
        flag = FLAG_OF_KEY.get(key)
        if flag is not None and (_has(given, key) or not _has(merged, key)):
            head, _, rest = problem.partition(":")
            problem = f"{head} ({flag}):{rest}"
        named.append(problem)
    return named


def board_config(flags: Flags, config_file: Path | None = None, key_files: Sequence[Path] = ()) -> BoardConfig:
    """The validated settings: `config_file`'s under the flags' (and the keys in `key_files`).

    ConfigError lists every problem at once: unreadable files and every invalid value.
    """
    problems: list[str] = []
    keys: list[str] = list(flags.ssh_keys)
    for path in key_files:
        try:
            keys += read_key_file(path)
        except ConfigError as exc:
            problems += exc.problems
    given = replace(flags, ssh_keys=tuple(keys)).to_mapping()
    base: dict[str, Any] = {}
    if config_file is not None:
        try:
            base = load_file(config_file)
        except ConfigError as exc:
            problems += exc.problems
    merged = merge(base, given)
    source = f"{config_file} and the options" if config_file is not None else "the options"
    try:
        cfg = boardconfig.from_mapping(merged, source)
    except ConfigError as exc:
        problems += _name_flags(exc.problems, given, merged)
    if problems:
        raise ConfigError(problems)
    return cfg


def to_bytes(cfg: BoardConfig) -> bytes:
    """The pikube.yaml written on the card."""
    return boardconfig.to_yaml(cfg).encode()


def is_empty(cfg: BoardConfig) -> bool:
    return cfg == BoardConfig()
