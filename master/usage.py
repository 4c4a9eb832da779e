"""The boards' latest resource usage, in memory only: what metrics-server keeps, and an hour of history per board.

Agents send a report every 15 s (agent/metrics/sampler.py). Usage changes every
few seconds and is worthless after a minute, so none of it goes to the store (an
SD card would take ~6 writes a minute per board for nothing): a master restart
forgets it, and the next reports fill it again, as metrics-server does.

Reports come from boards, so they are checked before anything is kept (types,
ranges, at most `MAX_PODS` pods of `MAX_CONTAINERS` containers each) and a bad
one is refused whole. A board's usage older than `STALE_SECONDS` is not served
(a board that stopped reporting must not look idle), and a board's history holds
at most `HISTORY` points (an hour at the default interval).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_PODS = 1000
MAX_CONTAINERS = 64
MAX_NAME = 253
STALE_SECONDS = 120.0
FORGET_SECONDS = 3600.0
HISTORY = 240


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    cpu: int  # nanocores
    memory: int  # working set, bytes


@dataclass(frozen=True)
class PodUsage:
    namespace: str
    name: str
    uid: str
    containers: tuple[ContainerUsage, ...]


@dataclass(frozen=True)
class NodeUsage:
    node: str
    timestamp: str  # RFC 3339, when the board took the sample
    window: float  # seconds the rates were measured over
    cpu: int
    memory: int
    temperature: float | None
    throttled: int | None
    received: float  # the master's monotonic clock
    pods: tuple[PodUsage, ...]


@dataclass(frozen=True)
class Point:
    """One point of a board's history (for the status page's plots)."""

    at: str
    cpu: int
    memory: int
    temperature: float | None
    throttled: int | None


class ReportError(ValueError):
    """A report that cannot be kept; the message says what is wrong with it."""


def _int(value: Any, what: str, limit: int = 1 << 62) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ReportError(f"{what} must be a non-negative integer")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ReportError(f"{what} must be a name of 1 to {MAX_NAME} characters")
    return value


def parse_report(node: str, report: Any, received: float) -> NodeUsage:
    """A board's report as kept, or ReportError."""
    if not isinstance(report, dict):
        raise ReportError("a usage report is a JSON object")
    board = report.get("node")
    if not isinstance(board, dict):
        raise ReportError("node: required object")
    window = report.get("window")
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 3600:
        raise ReportError("window must be a number of seconds between 0 and 3600")
    stamp = report.get("timestamp")
    if not isinstance(stamp, str) or len(stamp) > 40:
        raise ReportError("timestamp must be an RFC 3339 time")
    temperature = board.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))):
        raise ReportError("node.temperature must be a number or null")
    throttled = board.get("throttled")
    if throttled is not None:
        throttled = _int(throttled, "node.throttled", 1 << 32)
    pods_in = report.get("pods")
    if not isinstance(pods_in, list) or len(pods_in) > MAX_PODS:
        raise ReportError(f"pods must be a list of at most {MAX_PODS}")
    pods = []
    for i, pod in enumerate(pods_in):
        if not isinstance(pod, dict):
            raise ReportError(f"pods[{i}] must be an object")
        containers_in = pod.get("containers")
        if not isinstance(containers_in, list) or not 0 < len(containers_in) <= MAX_CONTAINERS:
            raise ReportError(f"pods[{i}].containers must be a list of 1 to {MAX_CONTAINERS}")
        containers = []
        for j, c in enumerate(containers_in):
            if not isinstance(c, dict):
                raise ReportError(f"pods[{i}].containers[{j}] must be an object")
            containers.append(ContainerUsage(_name(c.get("name"), f"pods[{i}].containers[{j}].name"),
                                             _int(c.get("cpu"), f"pods[{i}].containers[{j}].cpu"),
                                             _int(c.get("memory"), f"pods[{i}].containers[{j}].memory")))
        pods.append(PodUsage(_name(pod.get("namespace"), f"pods[{i}].namespace"),
                             _name(pod.get("name"), f"pods[{i}].name"), str(pod.get("uid") or "")[:64],
                             tuple(containers)))
    return NodeUsage(node, stamp, float(window), _int(board.get("cpu"), "node.cpu"),
                     _int(board.get("memory"), "node.memory"),
                     float(temperature) if temperature is not None else None, throttled, received, tuple(pods))


class UsageStore:
    """The latest report of every board (and its history), shared by the metrics API, autoscaling and the page."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: dict[str, NodeUsage] = {}
        self._pods: dict[tuple[str, str], tuple[NodeUsage, PodUsage]] = {}
        self._history: dict[str, deque[Point]] = {}

    def put(self, node: str, report: Any) -> NodeUsage:
        usage = parse_report(node, report, self._clock())
        with self._lock:
            old = self._latest.get(node)
            if old is not None:
                for pod in old.pods:
                    if self._pods.get((pod.namespace, pod.name), (None,))[0] is old:
                        del self._pods[(pod.namespace, pod.name)]
            self._latest[node] = usage
            for pod in usage.pods:
                self._pods[(pod.namespace, pod.name)] = (usage, pod)
            self._history.setdefault(node, deque(maxlen=HISTORY)).append(
                Point(usage.timestamp, usage.cpu, usage.memory, usage.temperature, usage.throttled))
            for gone in [n for n, u in self._latest.items() if usage.received - u.received > FORGET_SECONDS]:
                self._drop(gone)  # a board silent for an hour (deleted, or off): nothing of it is kept
        return usage

    def _drop(self, node: str) -> None:
        old = self._latest.pop(node)
        self._history.pop(node, None)
        for pod in old.pods:
            if self._pods.get((pod.namespace, pod.name), (None,))[0] is old:
                del self._pods[(pod.namespace, pod.name)]

    def _fresh(self, usage: NodeUsage) -> bool:
        return self._clock() - usage.received <= STALE_SECONDS

    def nodes(self) -> dict[str, NodeUsage]:
        with self._lock:
            return {name: u for name, u in self._latest.items() if self._fresh(u)}

    def pods(self) -> list[tuple[NodeUsage, PodUsage]]:
        with self._lock:
            return [entry for entry in self._pods.values() if self._fresh(entry[0])]

    def pod(self, namespace: str, name: str) -> tuple[NodeUsage, PodUsage] | None:
        with self._lock:
            entry = self._pods.get((namespace, name))
        return entry if entry is not None and self._fresh(entry[0]) else None

    def history(self, node: str) -> list[Point]:
        with self._lock:
            return list(self._history.get(node, ()))

    # -- what the status page reads (web.source.UsageSource) --------------------------------------------

    def board_history(self) -> dict[str, list[tuple[str, int, int, float | None, int | None]]]:
        with self._lock:
            return {node: [(p.at, p.cpu, p.memory, p.temperature, p.throttled) for p in points]
                    for node, points in self._history.items()}

    def pod_totals(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {(pod.namespace, pod.name): (sum(c.cpu for c in pod.containers), sum(c.memory for c in pod.containers))
                for _, pod in self.pods()}
