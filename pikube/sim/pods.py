"""How a simulated board "runs" a pod: a small state machine and the status a kubelet would report.

Nothing is executed. A pod starts after `start_delay`, is Ready after its
`sim.pikube.io/ready-after-seconds` annotation (default at once; never with
`sim.pikube.io/never-ready: "true"`), and if it carries
`sim.pikube.io/run-seconds` its containers exit after that long with
`sim.pikube.io/exit-code` (default 0); then the pod's restartPolicy decides,
as the kubelet would: Always and OnFailure (on a non-zero code) restart the
containers and count `restartCount`, otherwise the pod ends Succeeded or Failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.kube import timefmt

Obj = dict[str, Any]
PREFIX = "sim.pikube.io/"


def stamp(t: float) -> str:
    return timefmt.rfc3339(t)


def _float(annotations: dict[str, str], name: str) -> float | None:
    try:
        return float(annotations[PREFIX + name])
    except (KeyError, ValueError):
        return None


@dataclass
class SimPod:
    """One pod on a board. Times are wall-clock seconds (time.time())."""

    namespace: str
    name: str
    uid: str
    spec: Obj
    annotations: dict[str, str]
    seen: float
    ip: str = ""
    phase: str = "Pending"
    started: float = 0.0  # when the current containers started (0: not yet)
    first_start: float = 0.0
    restarts: int = 0
    ready: bool = False
    ready_since: float = 0.0
    exit_code: int | None = None  # of the last finished run
    finished: float = 0.0
    deleting: bool = False
    reported: Obj = field(default_factory=dict)

    @classmethod
    def from_pod(cls, pod: Obj, now: float) -> SimPod:
        m = pod.get("metadata") or {}
        return cls(m.get("namespace", ""), m.get("name", ""), m.get("uid", ""), pod.get("spec") or {},
                   dict(m.get("annotations") or {}), now)

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def step(self, now: float, start_delay: float, restart_delay: float) -> None:
        """Advance the state machine to `now`."""
        if self.done or self.deleting:
            return
        if not self.started:
            if now >= self.seen + start_delay and self.ip:
                self.phase, self.started = "Running", now
                self.first_start = self.first_start or now
            return
        if self.started > now:  # waiting to restart
            return
        run = _float(self.annotations, "run-seconds")
        if run is not None and now >= self.started + run:
            self._exit(now, int(_float(self.annotations, "exit-code") or 0), restart_delay)
            return
        if not self.ready and self.annotations.get(PREFIX + "never-ready") != "true" and \
                now >= self.started + (_float(self.annotations, "ready-after-seconds") or 0.0):
            self.ready, self.ready_since = True, now

    def _exit(self, now: float, code: int, restart_delay: float) -> None:
        self.exit_code, self.finished, self.ready = code, now, False
        policy = self.spec.get("restartPolicy") or "Always"
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            self.restarts += 1
            self.started = now + restart_delay
            return
        self.phase = "Succeeded" if code == 0 else "Failed"

    def status(self, host_ip: str, now: float) -> Obj:
        """The pod status a kubelet would report at `now`."""
        running = self.phase == "Running" and 0 < self.started <= now
        containers = []
        for c in self.spec.get("containers") or []:
            cs: Obj = {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "",
                       "containerID": f"sim://{self.uid[:12]}-{c.get('name', '')}", "ready": self.ready,
                       "started": bool(running), "restartCount": self.restarts}
            if running:
                cs["state"] = {"running": {"startedAt": stamp(self.started)}}
            elif self.done or self.exit_code is not None:
                cs["state"] = {"terminated": self._terminated()} if self.done else \
                    {"waiting": {"reason": "CrashLoopBackOff"}}
            else:
                cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            if self.restarts and self.exit_code is not None:
                cs["lastState"] = {"terminated": self._terminated()}
            containers.append(cs)
        when = stamp(self.ready_since or self.first_start or self.seen)
        conditions = [
            {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": when},
            {"type": "Ready", "status": "True" if self.ready else "False", "lastProbeTime": None,
             "lastTransitionTime": when},
            {"type": "ContainersReady", "status": "True" if self.ready else "False", "lastProbeTime": None,
             "lastTransitionTime": when},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp(self.seen)},
        ]
        status: Obj = {"phase": self.phase, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                       "startTime": stamp(self.seen), "conditions": conditions, "containerStatuses": containers}
        if self.ip:
            status["podIP"], status["podIPs"] = self.ip, [{"ip": self.ip}]
        return status

    def _terminated(self) -> Obj:
        code = self.exit_code or 0
        return {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                "startedAt": stamp(self.first_start or self.seen), "finishedAt": stamp(self.finished or self.seen)}
