"""Leader election between masters: one runs the scheduler and the controllers, every master serves the API.

client-go's algorithm on a `coordination.k8s.io/v1` Lease (`kube-system/pikube-controller-manager`),
with its defaults: a lease lasts 15 s, the leader renews it every 2 s and gives up
leading when it could not renew for 10 s; a candidate tries every 2 s and takes
the lease over only once it has seen the same record unchanged for a whole lease
duration (time measured on its own clock, so clocks of different boards need not
agree). Every write is a compare-and-swap on the Lease's resourceVersion, so two
candidates never both win. The holder's identity is its host name and a random
suffix; `leaseTransitions` counts hand-overs.

The elector calls `on_started` when it becomes the leader and `on_stopped` when
it stops being one (after which it campaigns again); the master starts and
stops the controller manager there.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import errors
from core.kube import timefmt
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LEASE_NAMESPACE, LEASE_NAME = "kube-system", "pikube-controller-manager"


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def new_identity() -> str:
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


class LeaderElector:
    def __init__(self, handlers: Handlers, lease_rt: ResourceType, on_started: Callable[[], None],
                 on_stopped: Callable[[], None], stopping: threading.Event, identity: str = "",
                 timing: Timing = Timing(), clock: Callable[[], float] = time.monotonic) -> None:
        self.handlers = handlers
        self.rt = lease_rt
        self.on_started, self.on_stopped = on_started, on_stopped
        self.stopping = stopping
        self.identity = identity or new_identity()
        self.timing = timing
        self.clock = clock
        self.leading = False
        # The last record seen (its resourceVersion) and when this candidate saw it change.
        self._observed_rv = ""
        self._observed_at = 0.0

    def _record(self, lease: Obj | None) -> Obj:
        now = timefmt.micro()
        spec = dict((lease or {}).get("spec") or {})
        taking = spec.get("holderIdentity") != self.identity
        spec.update({"holderIdentity": self.identity, "leaseDurationSeconds": int(self.timing.lease_duration),
                     "renewTime": now})
        if taking:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if lease else 0)
        return {"metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE}, "spec": spec}

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this master holds the lease afterwards."""
        try:
            lease = self.handlers.get(self.rt, LEASE_NAMESPACE, LEASE_NAME)
        except errors.NotFound:
            lease = None
        now = self.clock()
        if lease is None:
            try:
                made = self.handlers.create(self.rt, LEASE_NAMESPACE, self._record(None))
            except errors.AlreadyExists:
                return False
            self._observe(made, now)
            return True
        rv = str(lease["metadata"].get("resourceVersion") or "")
        if rv != self._observed_rv:
            self._observe(lease, now)
        holder = (lease.get("spec") or {}).get("holderIdentity")
        duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or self.timing.lease_duration)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # held by another, and not yet expired as this candidate sees it
        body = self._record(lease)
        body["metadata"]["resourceVersion"] = rv
        try:
            written = self.handlers.update(self.rt, LEASE_NAMESPACE, LEASE_NAME, body)
        except (errors.Conflict, errors.NotFound):
            return False
        self._observe(written, now)
        return True

    def _observe(self, lease: Obj, now: float) -> None:
        self._observed_rv = str(lease["metadata"].get("resourceVersion") or "")
        self._observed_at = now

    def run(self) -> None:
        """Campaign, lead, renew; until `stopping` is set (then step down: the lease is released)."""
        while not self.stopping.is_set():
            if not self.leading:
                if self._attempt():
                    self.leading = True
                    log.info("leader election: %s leads (lease %s/%s)", self.identity, LEASE_NAMESPACE, LEASE_NAME)
                    self.on_started()
                else:
                    self.stopping.wait(self.timing.retry_period)
                continue
            deadline = self.clock() + self.timing.renew_deadline
            renewed = False
            while not self.stopping.is_set() and self.clock() < deadline:
                if self._attempt():
                    renewed = True
                    break
                self.stopping.wait(self.timing.retry_period / 2)
            if not renewed and not self.stopping.is_set():
                log.warning("leader election: %s could not renew within %.0f s; stepping down", self.identity,
                            self.timing.renew_deadline)
                self.leading = False
                self.on_stopped()
                continue
            self.stopping.wait(self.timing.retry_period)
        if self.leading:
            self.leading = False
            self.on_stopped()
            self._release()

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except errors.ApiError as exc:  # the store is unreachable (no quorum): not leading this round
            log.info("leader election: %s", exc.message)
            return False

    def _release(self) -> None:
        """Give the lease up at shutdown, so another master takes over at once (client-go's ReleaseOnCancel)."""
        try:
            lease = self.handlers.get(self.rt, LEASE_NAMESPACE, LEASE_NAME)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1}
            self.handlers.update(self.rt, LEASE_NAMESPACE, LEASE_NAME,
                                 {"metadata": {**lease["metadata"]}, "spec": spec})
        except errors.ApiError:
            pass
