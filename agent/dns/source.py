"""The zone the responder answers from, rebuilt from the agent's informers when they change.

The agent already holds every Service and Endpoints object for its service
proxy (`agent/netsync`); this adds a listener to those two informers (no second
watch) that only marks the zone stale. The next query rebuilds it, so a burst
of API changes costs one rebuild and a new Service is answered as soon as the
watch event has arrived (typically well under a second). Until both informers
have listed once, `ready()` is False and the responder answers SERVFAIL for the
cluster zone rather than NXDOMAIN for names it simply has not read yet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from ipaddress import IPv4Network
from typing import Any, Protocol

from agent.dns.zone import Zone

Obj = dict[str, Any]


class Watched(Protocol):
    """What the zone needs of an informer (`agent.informer.Informer` is one)."""

    synced: threading.Event

    def items(self) -> list[Obj]: ...

    def add_listener(self, on_change: Any) -> None: ...


class ZoneSource:
    def __init__(self, domain: str, services: Watched, endpoints: Watched,
                 reverse_ranges: Iterable[IPv4Network] = ()) -> None:
        self.domain = domain
        self._services, self._endpoints = services, endpoints
        self._ranges = tuple(reverse_ranges)
        self._lock = threading.Lock()
        self._stale = True
        self._generation = 0
        self._zone = Zone(domain, [], {}, self._ranges)
        services.add_listener(self._changed)
        endpoints.add_listener(self._changed)

    def _changed(self, _key: str) -> None:
        self._stale = True

    def ready(self) -> bool:
        return self._services.synced.is_set() and self._endpoints.synced.is_set()

    def current(self) -> tuple[int, Zone]:
        """(generation, zone): the generation changes whenever the zone was rebuilt."""
        if not self._stale:
            return self._generation, self._zone
        with self._lock:
            if self._stale:
                self._stale = False  # cleared first: a change during the build marks it stale again
                endpoints = {}
                for obj in self._endpoints.items():
                    meta = obj.get("metadata") or {}
                    endpoints[(str(meta.get("namespace") or "default").lower(),
                               str(meta.get("name") or "").lower())] = obj
                self._zone = Zone(self.domain, self._services.items(), endpoints, self._ranges)
                self._generation += 1
            return self._generation, self._zone
