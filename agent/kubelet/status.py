"""Pod status exactly as the kubelet reports it, computed from the pod, its containers and the agent's notes.

Pure functions: `pod_status` takes what the sync saw (Docker's containers, the
reasons a container is waiting, probe verdicts) and returns the `status` the API
should hold, with phases, conditions and container states following the
kubelet's rules (getPhase, convertToAPIContainerStatuses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.runtime import labels as L
from agent.runtime.docker import Container
from core import wellknown

Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass
class Observed:
    """What a sync saw of one pod."""

    containers: list[Container]
    waiting: dict[str, Waiting] = field(default_factory=dict)  # container name -> why it is not running
    ready: Callable[[Container], bool] = lambda c: True
    started: Callable[[Container], bool] = lambda c: True
    host_ip: str = ""
    pod_ip: str = ""
    sandbox_id: str = ""


def instances(containers: list[Container], name: str, kind: L.Kind) -> list[Container]:
    """Instances of one container, newest (highest restart count) first."""
    found = [c for c in containers if c.container_name == name and c.kind is kind]
    return sorted(found, key=lambda c: (c.restart_count, c.created), reverse=True)


def terminated_reason(c: Container) -> str:
    if c.oom_killed:
        return "OOMKilled"
    if c.state == "created" and c.error:
        return "ContainerCannotRun"
    return "Completed" if c.exit_code == 0 else "Error"


def _terminated(c: Container) -> Obj:
    out: Obj = {"exitCode": c.exit_code if not (c.state == "created" and c.error) else 128,
                "reason": terminated_reason(c), "containerID": f"docker://{c.id}"}
    if c.started_at and not c.started_at.startswith("0001"):
        out["startedAt"] = _secs(c.started_at)
    if c.finished_at and not c.finished_at.startswith("0001"):
        out["finishedAt"] = _secs(c.finished_at)
    if c.error:
        out["message"] = c.error
    return out


def _secs(docker_time: str) -> str:
    """Docker's RFC 3339 with nanoseconds → Kubernetes' with seconds."""
    return docker_time.split(".")[0].rstrip("Z") + "Z"


def _image_id(c: Container) -> str:
    return f"docker://{c.image_id}" if c.image_id else ""


def container_status(spec: Obj, insts: list[Container], waiting: Waiting | None, obs: Observed,
                     default_waiting: str) -> Obj:
    name, image = str(spec.get("name")), str(spec.get("image", ""))
    latest = insts[0] if insts else None
    state: Obj
    last: Obj = {}
    if latest is not None and latest.running:
        state = {"running": {"startedAt": _secs(latest.started_at)}}
        if len(insts) > 1 and insts[1].finished:
            last = {"terminated": _terminated(insts[1])}
    elif latest is not None and latest.finished:
        if waiting is not None:
            state = {"waiting": {"reason": waiting.reason, **({"message": waiting.message} if waiting.message else {})}}
            last = {"terminated": _terminated(latest)}
        else:
            state = {"terminated": _terminated(latest)}
            if len(insts) > 1 and insts[1].finished:
                last = {"terminated": _terminated(insts[1])}
    else:
        why = waiting or Waiting(default_waiting)
        state = {"waiting": {"reason": why.reason, **({"message": why.message} if why.message else {})}}
        if latest is None and waiting is None:
            pass
    running = latest is not None and latest.running
    out: Obj = {
        "name": name, "state": state, "lastState": last,
        "ready": bool(running and latest is not None and obs.started(latest) and obs.ready(latest)),
        "restartCount": latest.restart_count if latest is not None else 0,
        "image": image, "imageID": _image_id(latest) if latest is not None else "",
        "started": bool(running and latest is not None and obs.started(latest)),
    }
    if latest is not None:
        out["containerID"] = f"docker://{latest.id}"
    return out


def init_done(spec: Obj, obs: Observed) -> tuple[bool, bool]:
    """(all init containers succeeded in the current sandbox, one failed for good under restartPolicy Never)."""
    never = spec.get("restartPolicy", "Always") == "Never"
    for ic in spec.get("initContainers") or []:
        insts = [c for c in instances(obs.containers, str(ic.get("name")), L.Kind.INIT)
                 if not obs.sandbox_id or c.labels.get(SANDBOX_LABEL) in ("", obs.sandbox_id)]
        if not insts or not insts[0].finished:
            return False, False
        if insts[0].exit_code != 0 or insts[0].oom_killed or insts[0].error:
            return False, never
    return True, False


SANDBOX_LABEL = wellknown.SANDBOX_LABEL


def phase(spec: Obj, statuses: list[Obj], initialized: bool, init_failed: bool) -> str:
    if init_failed:
        return "Failed"
    if not initialized:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for cs in statuses:
        st = cs["state"]
        if "running" in st:
            running += 1
        elif "terminated" in st:
            stopped += 1
            if st["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "terminated" in (cs.get("lastState") or {}):
            stopped += 1
        else:
            waiting += 1
    policy = spec.get("restartPolicy", "Always")
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _cond(kind: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    out: Obj = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


def conditions(pod: Obj, phase_: str, init_statuses: list[Obj], statuses: list[Obj], now: str) -> list[Obj]:
    spec = pod.get("spec") or {}
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
    incomplete = [s["name"] for s in init_statuses
                  if s["state"].get("terminated", {}).get("exitCode", 1) != 0 or "terminated" not in s["state"]]
    unready = [s["name"] for s in statuses if not s["ready"]]
    if phase_ == "Succeeded":
        init = _cond("Initialized", True)
        ready = _cond("ContainersReady", False, "PodCompleted")
        pod_ready = _cond("Ready", False, "PodCompleted")
    else:
        init = _cond("Initialized", not incomplete, "ContainersNotInitialized",
                     f"containers with incomplete status: [{' '.join(incomplete)}]")
        ready = _cond("ContainersReady", not unready, "ContainersNotReady",
                      f"containers with unready status: [{' '.join(unready)}]")
        pod_ready = _cond("Ready", not unready, "ContainersNotReady",
                          f"containers with unready status: [{' '.join(unready)}]")
        gates = [g.get("conditionType") for g in spec.get("readinessGates") or []]
        failing = [g for g in gates if (old.get(g) or {}).get("status") != "True"]
        if not unready and failing:
            pod_ready = _cond("Ready", False, "ReadinessGatesNotReady",
                              f"corresponding condition of pod readiness gate \"{failing[0]}\" does not exist.")
    ours = [init, ready, pod_ready, _cond("PodScheduled", True)]
    mine = {c["type"] for c in ours}
    out = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") not in mine]
    for c in ours:
        prev = old.get(c["type"])
        c["lastProbeTime"] = None
        c["lastTransitionTime"] = (prev.get("lastTransitionTime") if prev and prev.get("status") == c["status"]
                                   else None) or now
        out.append(c)
    order = {"PodScheduled": 0, "Initialized": 1, "ContainersReady": 2, "Ready": 3}
    return sorted(out, key=lambda c: order.get(str(c.get("type")), 9))


def pod_status(pod: Obj, obs: Observed, now: str) -> Obj:
    spec, old = pod.get("spec") or {}, pod.get("status") or {}
    initialized, init_failed = init_done(spec, obs)
    init_statuses = []
    for ic in spec.get("initContainers") or []:
        name = str(ic.get("name"))
        cs = container_status(ic, instances(obs.containers, name, L.Kind.INIT), obs.waiting.get(name), obs,
                              "PodInitializing")
        cs["ready"] = "terminated" in cs["state"] and cs["state"]["terminated"].get("exitCode") == 0
        init_statuses.append(cs)
    statuses = []
    for c in spec.get("containers") or []:
        name = str(c.get("name"))
        statuses.append(container_status(c, instances(obs.containers, name, L.Kind.APP), obs.waiting.get(name),
                                         obs, "ContainerCreating" if initialized else "PodInitializing"))
    ph = old.get("phase") if old.get("phase") in TERMINAL else phase(spec, statuses, initialized, init_failed)
    out: Obj = {
        "phase": ph,
        "conditions": conditions(pod, str(ph), init_statuses, statuses, now),
        "hostIP": obs.host_ip,
        "hostIPs": [{"ip": obs.host_ip}] if obs.host_ip else [],
        "startTime": old.get("startTime") or now,
        "containerStatuses": statuses,
    }
    if obs.pod_ip:
        out["podIP"], out["podIPs"] = obs.pod_ip, [{"ip": obs.pod_ip}]
    if init_statuses:
        out["initContainerStatuses"] = init_statuses
    if old.get("qosClass"):
        out["qosClass"] = old["qosClass"]
    return out


def not_ready(pod: Obj, now: str) -> Obj | None:
    """The part of the pod's status to write when its containers can no longer be seen (the runtime is down).

    Ready and ContainersReady turn False and no container is ready any more, as the
    node lifecycle controller's MarkPodsNotReady does for a board that stopped
    reporting, so the Endpoints controller moves the pod out of its Services at once.
    None when there is nothing to change: a finished pod, or one already reported so.
    """
    old = pod.get("status") or {}
    if old.get("phase") in TERMINAL:
        return None
    statuses = [{**cs, "ready": False} for cs in old.get("containerStatuses") or []]
    names = [str(cs.get("name")) for cs in statuses] or \
        [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    message = f"containers with unready status: [{' '.join(names)}]"
    conditions = []
    for c in old.get("conditions") or []:
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") != "False":
            c = {**c, "status": "False", "reason": "ContainersNotReady", "message": message,
                 "lastTransitionTime": now}
        conditions.append(c)
    if conditions == (old.get("conditions") or []) and statuses == (old.get("containerStatuses") or []):
        return None
    out: Obj = {"conditions": conditions}
    if statuses:
        out["containerStatuses"] = statuses
    return out
