"""The record a board's first boot leaves in `/var/lib/pikube/firstboot.json`, and reading it back.

`pikube firstboot` writes it; `pikube doctor` and the status page read it to
say what first boot did with `pikube.yaml`, step by step, and why a step
failed. They sit in different layers (the status page may not import the
commands), so the file's shape lives here, below all of them. A missing,
unreadable or foreign file reads as None: a board that was set up by hand
has no first-boot record, and that is not an error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_PATH = Path("/var/lib/pikube/firstboot.json")
FORMAT = 1

# What a run concluded (`Record.result`).
APPLIED = "applied"  # every step done or unchanged
FAILED = "failed"  # at least one step failed; the next boot tries again
INVALID = "invalid"  # pikube.yaml did not parse: nothing was applied
ABSENT = "absent"  # no pikube.yaml on the card: only the root file system was grown
RUNNING = "running"  # written before the long role step, so a crash or power cut there is visible

# A step's status.
DONE = "done"  # it changed something
UNCHANGED = "unchanged"  # it was already so
SKIPPED = "skipped"  # pikube.yaml does not ask for it
STEP_FAILED = "failed"


@dataclass(frozen=True)
class StepRecord:
    """One step of one run: what it did, or why it failed, and when."""

    name: str
    status: str
    message: str = ""
    error: str = ""
    time: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Record:
    """One run of `pikube firstboot`: the file it read, what it concluded, and each step."""

    result: str
    source: str = ""
    # sha256 of pikube.yaml as read, and as left on the card afterwards (without the secrets applied).
    config_sha256: str = ""
    written_sha256: str = ""
    started: str = ""
    finished: str = ""
    problems: tuple[str, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    format: int = field(default=FORMAT)

    @property
    def failed_steps(self) -> list[StepRecord]:
        return [s for s in self.steps if s.status == STEP_FAILED]

    def to_json(self) -> str:
        doc = asdict(self)
        doc["problems"] = list(self.problems)
        doc["steps"] = [asdict(s) for s in self.steps]
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key, "")
    return value if isinstance(value, str) else ""


def from_json(text: str) -> Record | None:
    """Parse a record; None for anything that is not one (a foreign or half-written file)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("result"), str):
        return None
    steps = []
    for item in doc.get("steps") or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            secs = item.get("seconds", 0.0)
            steps.append(StepRecord(name=item["name"], status=_text(item, "status"), message=_text(item, "message"),
                                    error=_text(item, "error"), time=_text(item, "time"),
                                    seconds=float(secs) if isinstance(secs, int | float) else 0.0))
    problems = tuple(p for p in doc.get("problems") or [] if isinstance(p, str))
    return Record(result=doc["result"], source=_text(doc, "source"), config_sha256=_text(doc, "config_sha256"),
                  written_sha256=_text(doc, "written_sha256"), started=_text(doc, "started"),
                  finished=_text(doc, "finished"), problems=problems, steps=tuple(steps))


def load(path: Path = STATE_PATH) -> Record | None:
    """The record at `path`, or None when there is none (or it cannot be read)."""
    try:
        return from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
