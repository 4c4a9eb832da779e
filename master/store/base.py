"""The store interface the API server is written against.

Objects are JSON dicts under string keys such as `/pods/default/web-1`. Every
write gets the next value of one global revision, which the store writes into
`metadata.resourceVersion` (as a decimal string). Writes may be *volatile*
(`durable=False`): kept in memory only, never written to disk, for heartbeats
(Leases, node status timestamps) so an idle cluster barely writes to the SD
card. Revisions stay strictly increasing across restarts either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Obj = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class Event:
    """One change: the object after it (for DELETED, its last state with the new revision).

    `object` and `prev` are shared by every watcher of the change: read them, copy
    before changing anything (a shallow copy suffices to set top-level keys).
    """

    type: EventType
    key: str
    object: Obj
    revision: int
    prev: Obj | None = None


class Watcher(Protocol):
    """Events for keys under one prefix, in revision order, after a start revision."""

    def next(self, timeout: float) -> Event | None:
        """The next event, or None after `timeout` seconds without one.

        Raises `core.errors.Gone` if the watcher fell too far behind and was dropped.
        """

    def close(self) -> None: ...


@dataclass(frozen=True)
class Page:
    """One page of a listing: objects in key order, the revision the page reflects, and
    how many more objects under the prefix follow the page at that revision."""

    items: list[Obj]
    revision: int
    remaining: int


# A read-modify-write step: gets the current object (None if absent) and returns the
# object to store, or None to delete it. Raising aborts the write and stores nothing.
Mutation = Callable[[Obj | None], Obj | None]


class Store(Protocol):
    def revision(self) -> int:
        """The newest revision handed out."""

    def compacted_revision(self) -> int:
        """Watches and resumes from revisions below this answer Gone."""

    def get(self, key: str) -> Obj | None:
        """The current object (a fresh copy the caller may change), or None."""

    def list(self, prefix: str, start: str = "", limit: int = 0) -> tuple[list[Obj], int]:
        """Objects with keys under `prefix`, in key order, from key `start` (inclusive) on,
        at most `limit` (0: all); and the revision the listing reflects."""

    def list_page(self, prefix: str, start: str = "", limit: int = 0, revision: int = 0) -> Page:
        """Like `list`, at `revision` (0: the current state): every object as it was at
        that revision, so pages read at one revision never show an object twice or miss
        one whatever changed between them. Raises `core.errors.Gone` if the store can
        no longer tell the state at `revision` (compacted, for one), BadRequest if it is
        newer than the store's revision."""

    def create(self, key: str, obj: Obj, durable: bool = True) -> Obj:
        """Store a new object. Raises AlreadyExists if the key exists."""

    def update(self, key: str, obj: Obj, expect_revision: int | None = None,
               durable: bool = True) -> Obj:
        """Replace an object. Raises NotFound if absent, Conflict if `expect_revision`
        is given and differs from the object's current revision."""

    def mutate(self, key: str, fn: Mutation, durable: bool = True) -> tuple[Obj | None, Obj | None]:
        """Atomically apply `fn` to the current object; returns (old, new).

        When `fn` deletes the object, `old` is its last state stamped with the deletion
        revision (what `delete` returns) and `new` is None. If `fn` returns None for an
        absent key, nothing happens and (None, None) is returned."""

    def delete(self, key: str, expect_revision: int | None = None) -> Obj:
        """Remove an object; returns its last state with the deletion revision."""

    def watch(self, prefix: str, since: int) -> Watcher:
        """Events under `prefix` with revision > `since`. Raises Gone if `since` is
        below the compacted revision."""

    def compact(self, keep_after: int) -> None:
        """Forget history at or below `keep_after` (current objects are kept)."""

    def compact_older_than(self, keep_last_revisions: int = 10_000) -> int:
        """Compact all but the newest `keep_last_revisions` revisions; returns the compacted revision."""

    def describe(self) -> Obj:
        """What the store is and how it is: `backend` ("sqlite", "etcd") and its health, for `pikube info` and
        the status page (an etcd cluster's members, their leader and which answer)."""
        ...

    def close(self) -> None: ...
