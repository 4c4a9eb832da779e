"""What the status page needs from the cluster's state, declared here so that `web` depends on no part of the master.

Three reads by key prefix — the newest revision, a listing, a watch — which the
master's store provides as they are (`master.store.base.Store` fits this
Protocol); the command layer hands the page that store and the key prefix of
each kind it shows (`Prefixes`). Tests hand it an in-memory source instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from core import firstboot

Obj = dict[str, Any]
# Plural of every kind the page shows (`web.summary.KINDS`) → the key prefix its objects live under.
Prefixes = Mapping[str, str]
# The first-boot record of the board the page runs on (`core/firstboot.py`), read when asked; None when the
# board was set up by hand. The command layer hands it a reader of /var/lib/pikube/firstboot.json.
FirstBootRecord = Callable[[], firstboot.Record | None]


def no_first_boot() -> firstboot.Record | None:
    return None


# The cluster's store as it describes itself (backend; an etcd cluster's members, leader, quorum), read when
# asked; the command layer hands the page the master's store's `describe`.
DatastoreHealth = Callable[[], Obj]


def no_datastore() -> Obj:
    return {}


class Change(Protocol):
    @property
    def revision(self) -> int: ...


class Watch(Protocol):
    def next(self, timeout: float) -> Change | None:
        """The next change, or None after `timeout` seconds; raises `core.errors.Gone` once dropped."""
        ...

    def close(self) -> None: ...


class Source(Protocol):
    def revision(self) -> int:
        """The newest revision: a watch from it sees every later change."""
        ...

    def list(self, prefix: str) -> tuple[list[Obj], int]:
        """The objects under `prefix`, and the revision the listing reflects."""
        ...

    def watch(self, prefix: str, since: int) -> Watch:
        """Changes under `prefix` after revision `since`; raises `core.errors.Gone` when `since` is too old."""
        ...


# One point of a board's usage history: (RFC 3339 time, CPU nanocores, working-set bytes, SoC °C or None,
# throttling flags or None).
UsagePoint = tuple[str, int, int, float | None, int | None]


class UsageSource(Protocol):
    """The boards' recent resource usage, kept in memory by the master (`master.usage.UsageStore` fits)."""

    def board_history(self) -> Mapping[str, list[UsagePoint]]:
        """Per board, its points of the last hour, oldest first."""
        ...

    def pod_totals(self) -> Mapping[tuple[str, str], tuple[int, int]]:
        """(namespace, pod) → (CPU nanocores, working-set bytes) summed over its containers, from fresh samples."""
        ...


class NoUsage:
    """A page without usage (tests, a master started without it)."""

    def board_history(self) -> Mapping[str, list[UsagePoint]]:
        return {}

    def pod_totals(self) -> Mapping[tuple[str, str], tuple[int, int]]:
        return {}
