"""What went wrong when a board tried to join, in one sentence each: the four a user meets.

An unreachable master, a master that is not the one the token pins, a wrong or
expired token, and a node name a Ready board already uses all look alike to a
user ("it did not join"); each gets its own words and its own way out.
"""

from __future__ import annotations

from core import errors, jointoken
from pikube.bootstrap.errors import JoinRefused


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__
    text = str(cause) if cause is not None else str(exc)
    if isinstance(cause, OSError) and cause.strerror:
        text = cause.strerror
    return text.rstrip(".")


def explain(exc: Exception, server: str, node_name: str) -> JoinRefused:
    """The user-facing error for a failed join (`exc` from `core.jointoken` or the master's Status)."""
    try:
        host, port = jointoken.split_server(server)
        where = f"{host}:{port}"
    except ValueError:
        where = server
    if isinstance(exc, jointoken.MasterUnreachable):
        return JoinRefused(f"cannot reach a pikube master at {where} ({_reason(exc)}): check the address, "
                           "and that enable-master has run on that board.")
    if isinstance(exc, jointoken.CaMismatch):
        return JoinRefused(f"the master at {where} is not the cluster this token was made for (its CA does not "
                           "match the hash in the token, so no secret was sent): check the address and the token.")
    if isinstance(exc, errors.Unauthorized):
        return JoinRefused(f"the master at {where} refused the join token (wrong, expired or deleted): "
                           "make a new one on the master with `sudo pikube token create`.")
    if isinstance(exc, errors.Conflict | errors.AlreadyExists):
        return JoinRefused(f"the node name {node_name!r} is already used by a Ready board of this cluster: "
                           f"choose another with --node-name, or remove that node first "
                           f"(`kubectl delete node {node_name}`).")
    if isinstance(exc, errors.Invalid):
        return JoinRefused(f"{node_name!r} cannot be a node name (lowercase letters, digits, '-' and '.', "
                           "starting and ending with a letter or digit): choose another with --node-name.")
    if isinstance(exc, errors.ApiError):
        return JoinRefused(f"the master at {where} refused the join: {exc.message.rstrip('.')}.")
    return JoinRefused(f"joining the master at {where} failed: {str(exc).rstrip('.')}.")
