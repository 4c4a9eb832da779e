"""Every `interval` seconds: the board's and its pods' CPU and memory, sent to the master in one request.

What metrics-server gets from each kubelet's summary API, pikube's agent sends
itself: a CPU rate (nanocores: the difference of two cumulative readings over the
time between them) and the working set, for the board and for every running app
container (never the pause container), with the sample's time and window. A
container seen for the first time has no rate yet, and a pod is sent only when
every running app container of it has one: metrics-server omits a pod with an
incomplete sample rather than reporting zero, and so does this.

The cgroup files are read directly (agent/metrics/cgroups.py); where they
cannot be (an agent in a mount namespace without them), Docker's one-shot stats
call gives the same two counters.

The report goes to the master's in-memory metrics (`PUT /pikube/v1/nodes/NAME/
metrics`, master/api/metrics.py): nothing is written to the SD card, on the
board or on the master. The board's SoC temperature and throttling flags ride
along for the status page's plots.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.metrics import cgroups, host
from agent.runtime import labels as L
from agent.runtime.docker import Container

log = logging.getLogger(__name__)
Obj = dict[str, Any]


@dataclass(frozen=True)
class Reading:
    at: float  # time.monotonic()
    cpu_ns: int


def rate(before: Reading | None, now: Reading) -> int | None:
    """Nanocores between two cumulative readings (None without an earlier one, or if the counter went back)."""
    if before is None or now.at <= before.at or now.cpu_ns < before.cpu_ns:
        return None
    return int((now.cpu_ns - before.cpu_ns) / (now.at - before.at))


class Sampler:
    """Samples the board and its containers; `run` sends a report every `interval` seconds until stopped."""

    def __init__(self, containers: Callable[[], list[Container]], send: Callable[[Obj], None], interval: float,
                 vitals: Callable[[], tuple[float | None, int | None]] = lambda: (None, None),
                 clock: Callable[[], float] = time.monotonic,
                 fallback: Callable[[str], tuple[int, int] | None] | None = None) -> None:
        """`fallback(container id)`: (CPU ns, working set) when the container's cgroup cannot be read."""
        self._containers = containers
        self._fallback = fallback
        self._send = send
        self.interval = interval
        self._vitals = vitals
        self._clock = clock
        self._dirs: dict[str, cgroups.CgroupDirs | None] = {}  # container id -> its cgroup (found once)
        self._last: dict[str, Reading] = {}  # container id (or "" for the board) -> previous reading
        self._last_at: float | None = None

    def sample(self) -> Obj | None:
        """One report: the board and every pod with a complete sample; None before the board has a rate."""
        now = self._clock()
        board_cpu, board_mem = host.cpu_ns(), host.working_set()
        pods: dict[str, Obj] = {}
        complete: dict[str, bool] = {}
        seen: set[str] = set()
        for c in self._containers():
            if not c.running or c.kind is L.Kind.SANDBOX or c.pid <= 0:
                continue
            seen.add(c.id)
            uid = c.pod_uid
            pod = pods.setdefault(uid, {"namespace": c.labels.get(L.POD_NAMESPACE, ""),
                                        "name": c.labels.get(L.POD_NAME, ""), "uid": uid, "containers": []})
            complete.setdefault(uid, True)
            if c.id not in self._dirs:
                self._dirs[c.id] = cgroups.dirs_of(c.pid)
            d = self._dirs[c.id]
            usage = cgroups.read(d) if d is not None else None
            if usage is None and self._fallback is not None:
                found = self._fallback(c.id)
                usage = cgroups.Usage(*found) if found is not None else None
            if usage is None:
                complete[uid] = False
                continue
            reading = Reading(now, usage.cpu_ns)
            cpu = rate(self._last.get(c.id), reading)
            self._last[c.id] = reading
            if cpu is None:
                complete[uid] = False
                continue
            pod["containers"].append({"name": c.container_name, "cpu": cpu, "memory": usage.working_set})
        for gone in set(self._dirs) - seen:
            self._dirs.pop(gone, None)
            self._last.pop(gone, None)
        window = now - self._last_at if self._last_at is not None else 0.0
        self._last_at = now
        node_cpu = None
        if board_cpu is not None:
            board = Reading(now, board_cpu)
            node_cpu = rate(self._last.get(""), board)
            self._last[""] = board
        if node_cpu is None or board_mem is None:
            return None
        temperature, throttled = self._vitals()
        return {
            "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "window": round(window, 3),
            "node": {"cpu": node_cpu, "memory": board_mem, "temperature": temperature, "throttled": throttled},
            "pods": [p for uid, p in pods.items() if complete[uid] and p["containers"]],
        }

    def run(self, stop: threading.Event) -> None:
        try:
            self.sample()  # the first readings: rates start from here
        except Exception as exc:
            log.debug("metrics: %s", exc)
        while not stop.wait(self.interval):
            try:
                report = self.sample()
                if report is not None:
                    self._send(report)
            except Exception as exc:  # the master unreachable, the runtime down: the next round tries again
                log.debug("metrics: %s", exc)
