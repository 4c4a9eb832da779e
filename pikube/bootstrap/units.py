"""The two services of a board as systemd unit files, and reading them back for the supervisor.

One description serves both ways of running pikube: systemd reads the file
(`--init systemd`), and where there is no systemd pikube's own supervisor reads
the very same file (`--init none`), so a dev board runs exactly what a Pi runs.
Only the keys the supervisor honours are written: `ExecStart`, `Environment`,
`Restart=always`, `RestartSec`.

`MALLOC_ARENA_MAX=2`: glibc gives every thread its own malloc arena; a threaded
Python server then holds several mostly empty arenas, which costs tens of MB
on a 1 GB board for no speed that matters here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

ENVIRONMENT = (("MALLOC_ARENA_MAX", "2"),)
# Quoting is needed for anything but these; `%` and `$` are systemd's specifier and variable marks.
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./$-]+")


@dataclass(frozen=True)
class Unit:
    """One long-running pikube process and how to keep it running."""

    name: str
    description: str
    exec_start: tuple[str, ...]
    after: tuple[str, ...] = ("docker.service", "network-online.target")
    wants: tuple[str, ...] = ("network-online.target",)
    environment: tuple[tuple[str, str], ...] = ENVIRONMENT
    restart_sec: int = 2
    # A clean stop must not take longer than this (the master fsyncs and closes its store).
    stop_timeout_sec: int = 30


def _quote(arg: str) -> str:
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(arg):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: Sequence[str]) -> str:
    """`argv` as systemd's `ExecStart=` value (quoted as systemd splits it)."""
    return " ".join(_quote(a) for a in argv)


def render(unit: Unit) -> str:
    """The unit file's text."""
    env = " ".join(_quote(f"{k}={v}") for k, v in unit.environment)
    lines = [
        "# Written by pikube (enable-master / enable-worker); `pikube disable` removes it.",
        "[Unit]",
        f"Description={unit.description}",
        f"After={' '.join(unit.after)}",
        f"Wants={' '.join(unit.wants)}",
        "",
        "[Service]",
        "Type=simple",
        *([f"Environment={env}"] if env else []),
        f"ExecStart={exec_line(unit.exec_start)}",
        "Restart=always",
        f"RestartSec={unit.restart_sec}",
        f"TimeoutStopSec={unit.stop_timeout_sec}",
        "LimitNOFILE=65536",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def _split(value: str) -> list[str]:
    return [part.replace("%%", "%").replace("$$", "$") for part in shlex.split(value)]


def parse(name: str, text: str) -> Unit:
    """Read a unit file back (what the supervisor needs of it); ValueError when it has no ExecStart."""
    values: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values.setdefault(key.strip(), []).append(value.strip())
    starts = values.get("ExecStart")
    if not starts or not starts[-1]:
        raise ValueError(f"{name} has no ExecStart")
    env: list[tuple[str, str]] = []
    for value in values.get("Environment", []):
        for item in _split(value):
            key, eq, val = item.partition("=")
            if eq:
                env.append((key, val))
    restart_sec = values.get("RestartSec", ["2"])[-1]
    return Unit(
        name=name,
        description=values.get("Description", [name])[-1],
        exec_start=tuple(_split(starts[-1])),
        after=tuple(" ".join(values.get("After", [])).split()),
        wants=tuple(" ".join(values.get("Wants", [])).split()),
        environment=tuple(env),
        restart_sec=int(restart_sec.rstrip("s") or "2"),
        stop_timeout_sec=int(values.get("TimeoutStopSec", ["30"])[-1].rstrip("s") or "30"),
    )
