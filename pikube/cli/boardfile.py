"""The board's configuration file under flags and the environment: flags > `PIKUBE_*` > config.yaml > defaults.

`/etc/pikube/config.yaml` has the keys of the card's `pikube.yaml`
(core/boardconfig.py; first boot copies the card's file there without its
secrets), so a board set up from the card and one set up by hand answer the
same questions the same way. `enable-master`, `enable-worker` and
`pikube agent` take from it what their flags did not say:

| setting   | flag             | environment        | file       |
|-----------|------------------|--------------------|------------|
| master    | MASTER, --server | `PIKUBE_MASTER`    | `master`   |
| token     | --token          | `PIKUBE_TOKEN`     | `token`    |
| node name | --node-name      | `PIKUBE_NODE_NAME` | `hostname` |
| the file  | --config         | `PIKUBE_CONFIG`    | —          |

This module is the one place that reads those variables and the file; the
commands resolve each value here once and hand frozen settings down, as
before. The file is read with `secrets_removed` (a worker without a token is
fine there: the token may come from a flag, or the board joined already).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core import boardconfig, jointoken
from core.boardconfig import BoardConfig, ConfigError

CONFIG_NAME = "config.yaml"
ENV_CONFIG = "PIKUBE_CONFIG"
ENV_MASTER = "PIKUBE_MASTER"
ENV_TOKEN = "PIKUBE_TOKEN"
ENV_NODE_NAME = "PIKUBE_NODE_NAME"


class BoardFileError(Exception):
    """The configuration file cannot be used; the message is one line naming the file and every problem."""


@dataclass(frozen=True)
class Layers:
    """What lies under the flags: the environment and the file (empty when there is none)."""

    env: Mapping[str, str] = field(default_factory=dict)
    file: BoardConfig = field(default_factory=BoardConfig)
    path: Path | None = None

    def pick(self, flag: str, env_name: str, file_value: str | None, default: str = "") -> str:
        """The first value given: the flag, then the environment variable, then the file, then `default`."""
        if flag:
            return flag
        from_env = self.env.get(env_name, "").strip()
        if from_env:
            return from_env
        return file_value if file_value else default

    def master(self, flag: str) -> str:
        return self.pick(flag, ENV_MASTER, self.file.master)

    def token(self, flag: str) -> str:
        return self.pick(flag, ENV_TOKEN, self.file.token)

    def node_name(self, flag: str, default: str) -> str:
        return self.pick(flag, ENV_NODE_NAME, self.file.hostname, default)

    def server_url(self, flag: str) -> str:
        """The master as the agent's `https://HOST:PORT`; a flag is passed on as given."""
        if flag:
            return flag
        value = self.master("")
        if not value:
            return ""
        try:
            host, port = jointoken.split_server(value)
        except ValueError:
            return value  # the agent reports it
        return f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"

    def describe(self) -> str:
        return str(self.path) if self.path is not None else "the board's configuration file"


def load(flag: Path | None, default: Path, env: Mapping[str, str] | None = None) -> Layers:
    """Read the file named by --config, else `PIKUBE_CONFIG`, else `default` (which may be absent).

    A file named explicitly must exist; an invalid file is an error naming
    every problem, never silently skipped.
    """
    env = os.environ if env is None else env
    named = flag if flag is not None else (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    path = named if named is not None else default
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if named is not None:
            raise BoardFileError(f"the configuration file {path} does not exist.") from None
        return Layers(env=dict(env), path=None)
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardFileError(f"cannot read the configuration file {path}: {exc}.") from None
    try:
        cfg = boardconfig.parse_text(text, source=str(path), secrets_removed=True)
    except ConfigError as exc:
        raise BoardFileError(f"{path} is not valid: " + " ".join(
            p.removeprefix(f"{path}: ") for p in exc.problems)) from None
    return Layers(env=dict(env), file=cfg, path=path)


def refuse_other_role(layers: Layers, role: str, command: str) -> None:
    """A file that gives this board another role stops the command before it changes anything."""
    wanted = layers.file.role
    if wanted in ("master", "worker") and wanted != role:
        raise BoardFileError(f"{layers.describe()} says role: {wanted}, but {command} makes this board a {role}; "
                             "change the role in the file (or remove it) first.")
