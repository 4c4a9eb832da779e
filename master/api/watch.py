"""Watch streams: store events turned into the newline-delimited JSON `kubectl get -w` reads.

Selectors are applied on both the old and the new object, so an object that
starts or stops matching is reported as ADDED or DELETED, as Kubernetes does.

A stream with nothing to send yields an empty chunk every `TICK` seconds: it
never reaches the wire, but lets the server check that the client is still
there (master/api/streaming.py) and release the thread and the store watcher
when it is not. The watch also ends at its `timeoutSeconds`, events or not.

Plain JSON watchers of the same change get the same bytes, so the line for a
(change, event type) is encoded once and shared (`LineCache`), as the real API
server serializes a watch event once for all its watchers: with 200 watchers
of one resource, one `json.dumps` per change instead of 200. Table watchers
render per request (their columns depend on the request).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from core import errors
from master.api.streaming import TICK
from master.registry.listing import ListOptions
from master.registry.resource import ResourceType
from master.registry.verbs import with_type
from master.store.base import Event, Store

Obj = dict[str, Any]
Encoder = Callable[[Obj], Obj]
BOOKMARK_EVERY = 30.0


def _gone(message: str) -> bytes:
    status = errors.Gone(message=message).status()
    return (json.dumps({"type": "ERROR", "object": status}) + "\n").encode()


def classify(event: Event, opts: ListOptions) -> str | None:
    """The event type this watcher sees, or None when neither state matches."""
    now_matches = event.type != "DELETED" and opts.matches(event.object)
    before = event.prev if event.prev is not None else (event.object if event.type == "DELETED" else None)
    before_matches = before is not None and opts.matches(before)
    if event.type == "ADDED":
        return "ADDED" if now_matches else None
    if event.type == "DELETED":
        return "DELETED" if before_matches else None
    if now_matches and before_matches:
        return "MODIFIED"
    if now_matches:
        return "ADDED"
    if before_matches:
        return "DELETED"
    return None


class LineCache:
    """The encoded watch lines of the most recent changes, shared by every plain JSON watcher."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._lines: OrderedDict[tuple[int, str, str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def line(self, rt: ResourceType, event: Event, kind: str) -> bytes:
        key = (event.revision, event.key, kind, rt.api_version)
        with self._lock:
            cached = self._lines.get(key)
            if cached is not None:
                self._lines.move_to_end(key)
                return cached
        line = _line(kind, with_type(rt, dict(event.object)))  # encoded outside the lock
        with self._lock:
            self._lines[key] = line
            while len(self._lines) > self._size:
                self._lines.popitem(last=False)
        return line

    def __len__(self) -> int:
        return len(self._lines)


SHARED_LINES = LineCache()


def stream(store: Store, rt: ResourceType, ns: str, opts: ListOptions, resource_version: str,
           timeout: float, bookmarks: bool, encode: Encoder, stopping: threading.Event,
           shared: LineCache | None = None) -> Iterator[bytes]:
    """The watch's lines. `shared`: the cache to take plain JSON lines from (None when `encode` renders
    something request-specific, such as a Table).

    A resourceVersion that is not a revision is refused here, before any line (and so before the response's
    200 and headers): a 400, never an empty stream."""
    if resource_version not in ("", "0") and not resource_version.isdigit():
        raise errors.BadRequest(message=f'invalid resourceVersion "{resource_version}"')
    return _lines(store, rt, ns, opts, resource_version, timeout, bookmarks, encode, stopping, shared)


def _lines(store: Store, rt: ResourceType, ns: str, opts: ListOptions, resource_version: str,
           timeout: float, bookmarks: bool, encode: Encoder, stopping: threading.Event,
           shared: LineCache | None) -> Iterator[bytes]:
    prefix = rt.prefix(ns)
    initial: list[Obj] = []
    if resource_version in ("", "0"):
        initial, since = _matching(store, prefix, opts)
    else:
        since = int(resource_version)
    try:
        watcher = store.watch(prefix, since)
    except errors.Gone:
        yield _gone(f"too old resource version: {since} ({store.compacted_revision()})")
        return
    deadline = time.monotonic() + timeout
    last_sent = last_yield = time.monotonic()
    try:
        yield from (_line("ADDED", encode(with_type(rt, obj))) for obj in initial)
        initial = []  # sent: not held for the rest of the watch (see `_matching`)
        while not stopping.is_set():
            now = time.monotonic()
            if now - last_yield >= TICK:
                # Nothing to send for a while (no events, or none this watch sees): let the server look at the
                # client. Empty, so it never reaches the wire.
                yield b""
                last_yield = now
            left = deadline - now
            if left <= 0:
                return
            try:
                event = watcher.next(timeout=min(left, TICK))
            except errors.Gone:
                yield _gone("the watch fell too far behind; start a new watch")
                return
            if event is None:
                if bookmarks and time.monotonic() - last_sent > BOOKMARK_EVERY:
                    mark = {"kind": rt.kind, "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(store.revision())}}
                    yield _line("BOOKMARK", mark)
                    last_sent = last_yield = time.monotonic()
                continue
            kind = classify(event, opts)
            if kind is None:
                continue
            if shared is not None:
                yield shared.line(rt, event, kind)
            else:
                yield _line(kind, encode(with_type(rt, dict(event.object))))
            last_sent = last_yield = time.monotonic()
    finally:
        watcher.close()


def _matching(store: Store, prefix: str, opts: ListOptions) -> tuple[list[Obj], int]:
    """The listed objects the watch's selectors match, and the list's revision.

    A function of its own so that the full list is freed when it returns: a generator keeps its locals for
    as long as the watch lasts, and 500 watches each holding a list of every object in a namespace cost
    hundreds of MB, a long cyclic-GC pass now and then, and a stall of the API when they all end together.
    """
    items, since = store.list(prefix)
    return [o for o in items if opts.matches(o)], since


def _line(kind: str, obj: Obj) -> bytes:
    return (json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n").encode()
