"""The state file of one dev run: what it made, so `dev down` can remove exactly that.

`state.json` is claimed atomically before anything is made (so two `dev up`s on
one directory cannot both proceed) and rewritten after every step, so even a run
that crashed half-way records enough to be torn down.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.fsutil import write_atomic
from pikube.dev.boards import Lan
from pikube.dev.errors import DevError
from pikube.dev.naming import RunId

STATE_FILE = "state.json"
ENV_FILE = "env"
KUBECONFIG_FILE = "kubeconfig"
ENGINE_DIR = "engine"
LOG_DIR = "logs"


class Phase(StrEnum):
    STARTING = "starting"
    UP = "up"
    STOPPING = "stopping"


@dataclass(frozen=True)
class EngineRecord:
    """The engine a run uses; `root` is set only when the run started it."""

    host: str
    root: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class ProcessRecord:
    """A process a run started inside a board (the master, an agent)."""

    board: str
    name: str
    pid: int
    argv: tuple[str, ...]
    log: str


@dataclass(frozen=True)
class State:
    run: RunId
    phase: Phase
    workers: int
    engine: EngineRecord | None = None
    lan: Lan | None = None
    processes: tuple[ProcessRecord, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "run": self.run,
            "phase": self.phase.value,
            "workers": self.workers,
            "engine": None if self.engine is None else vars(self.engine),
            "lan": None if self.lan is None else self.lan.to_dict(),
            "processes": [{**vars(p), "argv": list(p.argv)} for p in self.processes],
        }
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        engine = data.get("engine")
        lan = data.get("lan")
        return cls(
            run=RunId(str(data["run"])),
            phase=Phase(data["phase"]),
            workers=int(data["workers"]),
            engine=None if engine is None else EngineRecord(**engine),
            lan=None if lan is None else Lan.from_dict(lan),
            processes=tuple(ProcessRecord(**{**p, "argv": tuple(p["argv"])}) for p in data.get("processes", [])),
        )


def state_file(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def claim(state_dir: Path, state: State) -> None:
    """Write the first state file; fail if the directory already holds a run."""
    try:
        fd = os.open(state_file(state_dir), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise DevError(
            f"{state_dir} already holds a dev cluster; run `pikube dev down --state-dir {state_dir}` first."
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(state.to_json())


def save(state_dir: Path, state: State) -> None:
    """Replace the state file atomically (mode 0644, as `claim` made it)."""
    write_atomic(state_file(state_dir), state.to_json(), 0o644)


def load(state_dir: Path) -> State:
    """The run recorded in `state_dir`, or a DevError saying there is none."""
    if not state_dir.is_dir():
        raise DevError(f"{state_dir} does not exist, so there is no dev cluster there.")
    try:
        text = state_file(state_dir).read_text()
    except FileNotFoundError:
        raise DevError(f"{state_dir} holds no dev cluster (it has no {STATE_FILE}).") from None
    try:
        return State.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise DevError(f"{state_file(state_dir)} is damaged ({exc}); remove it by hand.") from None
