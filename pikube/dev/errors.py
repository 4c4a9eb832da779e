"""The one error type of the dev harness: a plain sentence the CLI can print as is.

Harness code raises `DevError` for anything a user can fix (missing root, an
occupied state directory, an unreachable engine); the CLI turns it into its own
error without adding a traceback, so the message must stand alone.
"""

from __future__ import annotations


class DevError(Exception):
    """A user-fixable problem with the dev harness, phrased as one plain sentence."""
