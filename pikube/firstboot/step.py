"""What a first-boot step returns, and how it fails: the vocabulary shared by the steps and the driver.

A step is a function `(Host, BoardConfig) -> Outcome`. It either reports what it
did (`done`: something changed; `unchanged`: it was already so; `skipped`:
pikube.yaml does not ask for it), or raises `StepError` with a sentence for the
journal and firstboot.json. Any other exception is a bug, but the driver still
records it as that step's failure and carries on with the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core import firstboot
from core.boardconfig import BoardConfig
from pikube.firstboot.host import Host


class StepError(Exception):
    """A step could not do its work; the message says what and, where it can, what to do."""


@dataclass(frozen=True)
class Outcome:
    status: str
    message: str


def changed(did_change: bool, done: str, unchanged: str) -> Outcome:
    """`done` with the first message when anything changed, else `unchanged` with the second."""
    if did_change:
        return Outcome(firstboot.DONE, done)
    return Outcome(firstboot.UNCHANGED, unchanged)


def skipped(message: str) -> Outcome:
    return Outcome(firstboot.SKIPPED, message)


Step = Callable[[Host, BoardConfig], Outcome]
