"""WSGI glue so a watch's response headers leave at once, before its first event.

WSGI servers hold headers back until the first body bytes; a watch may have no
event for minutes, and clients wait for headers with a timeout. Responses the
API marks as streams get their headers flushed through WSGI's `write` callable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

STREAM_HEADER = "X-Pikube-Stream"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def flush_stream_headers(app: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        state: dict[str, Any] = {}

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            stream = any(k == STREAM_HEADER for k, _ in headers)
            write = start_response(status, [(k, v) for k, v in headers if k != STREAM_HEADER], exc_info)
            if stream:
                state["write"] = write
            return write

        result = app(environ, sr)
        write = state.get("write")
        if write is not None:
            write(b"")
        return result

    return wrapped
