"""The bootstrap's errors: each is one sentence a user can act on, printed by the CLI as is."""

from __future__ import annotations


class BootstrapError(Exception):
    """Setting the board up (or tearing it down) cannot go on; the message says why and what to do."""


class NotRoot(BootstrapError):
    """The command changes system services and files: it must run as root."""


class PreflightFailed(BootstrapError):
    """The doctor found something that would keep the board from working."""


class JoinRefused(BootstrapError):
    """The master could not be reached, was not the pinned one, or refused the token or the name."""


class NotReady(BootstrapError):
    """The services started but the node did not become Ready in time."""
