"""Watch fan-out for the store: a ring of recent changes and one bounded queue per watcher.

Writers hand every published change to `Hub.publish` in revision order (under the
store's state lock); the hub appends it to the ring and to the queue of each
watcher whose prefix matches. A watcher that falls behind by more than its bound
is dropped instead of slowing writers: its `next` raises `Gone` and the client
relists, as against a real API server. Changes travel as serialized JSON and are
decoded in the watcher's own `next`, so a slow consumer costs writers nothing.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import NamedTuple

from core import errors
from master.store.base import Event, EventType, Obj


class Change(NamedTuple):
    """One published write, as the ring and the queues keep it."""

    revision: int
    type: EventType
    key: str
    data: bytes  # the object after the change (for DELETED: last state, deletion revision)
    prev: bytes | None  # the object before it (None for ADDED)
    volatile: bool  # not in the disk log


def to_event(change: Change) -> Event:
    """The change as an Event; every watcher of the same change gets the same decoded objects.

    With a hundred boards each watching pods, decoding a change once instead of once per
    watcher is most of the cost of fan-out; event objects are therefore read-only.
    """
    prev = None if change.prev is None else _decode(change.prev)
    return Event(change.type, change.key, _decode(change.data), change.revision, prev)


# Changes larger than this are decoded per watcher instead of kept in the shared cache: 256 cached
# CustomResourceDefinitions of cert-manager's size would hold tens of MB, and large objects have few watchers.
SHARED_DECODE_BYTES = 16 << 10


def _decode(data: bytes) -> Obj:
    if len(data) > SHARED_DECODE_BYTES:
        obj: Obj = json.loads(data)
        return obj
    return _decode_shared(data)


@functools.lru_cache(maxsize=256)
def _decode_shared(data: bytes) -> Obj:
    obj: Obj = json.loads(data)
    return obj


class Ring:
    """The most recent changes, bounded by count and by bytes.

    Every change with revision > `floor` is in the ring. When a memory-only
    (volatile) change falls out, the ring remembers its key and revision: a resume
    from before it cannot be served from the disk log without a gap.
    """

    def __init__(self, floor: int, max_events: int, max_bytes: int) -> None:
        self.floor = floor
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: deque[Change] = deque()
        self.volatile_evicted: dict[str, int] = {}

    def append(self, change: Change) -> None:
        self._items.append(change)
        self._bytes += _size(change)
        while self._items and (len(self._items) > self._max_events or self._bytes > self._max_bytes):
            old = self._items.popleft()
            self._bytes -= _size(old)
            self.floor = old.revision
            if old.volatile:
                self.volatile_evicted[old.key] = old.revision

    def after(self, prefix: str, since: int) -> list[Change]:
        """Changes under `prefix` with revision > `since` (which must be >= floor)."""
        out: list[Change] = []
        for change in reversed(self._items):
            if change.revision <= since:
                break
            if change.key.startswith(prefix):
                out.append(change)
        out.reverse()
        return out

    def lost_volatile(self, prefix: str, since: int, start: str = "") -> bool:
        """Whether a volatile change under `prefix` (of a key from `start` on) after `since`
        has left the ring."""
        return any(rev > since and key.startswith(prefix) and key >= start
                   for key, rev in self.volatile_evicted.items())

    def forget_volatile_through(self, revision: int) -> None:
        self.volatile_evicted = {k: r for k, r in self.volatile_evicted.items() if r > revision}


def _size(change: Change) -> int:
    return len(change.data) + (len(change.prev) if change.prev is not None else 0) + 100


class QueueWatcher:
    """A `Watcher`: first a replay of history, then live changes from its queue."""

    def __init__(self, prefix: str, since: int, replay: Iterator[Change], max_queue: int,
                 on_close: Callable[[QueueWatcher], None]) -> None:
        self.prefix = prefix
        self._since = since
        self._replay: Iterator[Change] | None = replay
        self._max_queue = max_queue
        self._on_close = on_close
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Change] = deque()
        self._gone: str = ""
        self._closed = False

    def push(self, change: Change) -> bool:
        """Queue a live change; False (and the watcher is dropped) if it is too far behind."""
        if change.revision <= self._since:
            return True
        with self._cond:
            if self._gone or self._closed:
                return False
            if len(self._queue) >= self._max_queue:
                self._queue.clear()
                self._gone = f"watcher fell more than {self._max_queue} events behind and was dropped"
                self._cond.notify_all()
                return False
            self._queue.append(change)
            self._cond.notify()
            return True

    def drop(self, reason: str) -> None:
        with self._cond:
            if not self._gone:
                self._gone = reason
            self._queue.clear()
            self._cond.notify_all()

    def next(self, timeout: float) -> Event | None:
        if self._replay is not None:
            if self._gone:
                raise errors.Gone(message=self._gone)
            change = next(self._replay, None)  # may raise Gone if compaction overtook it
            if change is not None:
                return to_event(change)
            self._replay = None
        with self._cond:
            if not self._queue and not self._gone:
                self._cond.wait(timeout)
            if self._gone:
                raise errors.Gone(message=self._gone)
            if not self._queue:
                return None
            change = self._queue.popleft()
        return to_event(change)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
        self._replay = None
        self._on_close(self)


class Hub:
    """Watchers grouped by prefix, so a write tests each distinct prefix once."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, set[QueueWatcher]] = {}

    def add(self, watcher: QueueWatcher) -> None:
        self._by_prefix.setdefault(watcher.prefix, set()).add(watcher)

    def remove(self, watcher: QueueWatcher) -> None:
        group = self._by_prefix.get(watcher.prefix)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self._by_prefix[watcher.prefix]

    def publish(self, change: Change) -> None:
        dropped: list[QueueWatcher] = []
        for prefix, group in self._by_prefix.items():
            if change.key.startswith(prefix):
                dropped.extend(w for w in group if not w.push(change))
        for watcher in dropped:
            self.remove(watcher)

    def drop_all(self, reason: str) -> None:
        for group in list(self._by_prefix.values()):
            for watcher in list(group):
                watcher.drop(reason)
        self._by_prefix.clear()

    def count(self) -> int:
        return sum(len(g) for g in self._by_prefix.values())
