"""The shape of `/api/summary`, the JSON behind the status page (documented in docs/status-page.md).

Everything the page shows is here and nothing else: the summary is built
field by field from the objects, never by copying them, so container env,
volumes, Secrets and annotations other than the Pi facts cannot leak into it.
Times are RFC 3339 strings from the master's clock; the page turns them into
ages against `now` (boards often have no real-time clock, phones do).
"""

from __future__ import annotations

import enum
from typing import TypedDict

from web.boardfacts import Flag, Temperature

SCHEMA_VERSION = 1


class Tone(enum.StrEnum):
    """The colour of a card, a row or a pod: one vocabulary for the whole page."""

    OK = "ok"  # green: running, ready, healthy
    BUSY = "busy"  # blue: starting, rolling out, terminating
    DONE = "done"  # grey: finished successfully
    WARN = "warn"  # amber: needs a look (hot, throttled, not all ready)
    BAD = "bad"  # red: down, failing, crash-looping


class Usage(TypedDict):
    requested: int  # CPU in millicores, memory in bytes: the sum of the requests of the board's pods
    allocatable: int


class Board(TypedDict):
    name: str
    role: str  # "master" or "worker" (or another node-role label)
    ready: str  # "Ready" or "NotReady"
    readyReason: str  # why not, e.g. "no heartbeat for 40 s" (the Ready condition's message)
    tone: str
    schedulable: bool
    address: str
    model: str
    arch: str
    os: str
    kernel: str
    kubelet: str
    runtime: str
    created: str
    temperature: Temperature | None
    throttling: list[Flag]
    pressure: list[str]  # MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable when true
    cpu: Usage
    memory: Usage
    pods: int
    podCapacity: int


class Workload(TypedDict):
    kind: str  # Deployment, DaemonSet, Job
    namespace: str
    name: str
    ready: int  # ready replicas / ready daemon pods / succeeded completions
    desired: int
    status: str
    tone: str
    images: list[str]
    created: str


class Pod(TypedDict):
    namespace: str
    name: str
    status: str  # kubectl's STATUS column: Running, Pending, CrashLoopBackOff, Completed ...
    tone: str
    ready: str  # "1/2"
    restarts: int
    ip: str
    owner: str  # "Deployment/web", "DaemonSet/agent", "Job/backup" or ""
    created: str


class PodGroup(TypedDict):
    board: str  # "" for pods not scheduled yet
    pods: list[Pod]


class Port(TypedDict):
    name: str
    protocol: str
    port: int
    targetPort: str
    nodePort: int | None
    urls: list[str]  # http://<board address>:<nodePort>/ on every Ready board
    externalUrls: list[str]  # http://<external IP>:<port>/ for every external address


class Service(TypedDict):
    namespace: str
    name: str
    type: str
    clusterIP: str
    externalIPs: list[str]  # the LoadBalancer's ingress, then spec.externalIPs (kubectl's EXTERNAL-IP)
    pending: bool  # a LoadBalancer still without an address
    ports: list[Port]


class Event(TypedDict):
    type: str  # Normal or Warning
    reason: str
    object: str  # "Pod/web-1"
    namespace: str
    message: str
    count: int
    last: str


class Totals(TypedDict):
    boards: int
    boardsReady: int
    pods: int
    podsRunning: int
    podsFailing: int
    warnings: int


class Summary(TypedDict):
    schema: int
    version: str
    totals: Totals
    boards: list[Board]
    workloads: list[Workload]
    podsByBoard: list[PodGroup]
    services: list[Service]
    events: list[Event]
