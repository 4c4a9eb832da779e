"""Workload rows: Deployments, StatefulSets, DaemonSets and Jobs with how many of their pods are ready (or done);
CronJobs with their schedule and how many of their Jobs run now."""

from __future__ import annotations

from typing import Any

from web.model import Tone, Workload

Obj = dict[str, Any]


def _images(obj: Obj) -> list[str]:
    template = (obj.get("spec") or {}).get("template") or \
        (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    spec = template.get("spec") or {}
    return [str(c.get("image") or "") for c in spec.get("containers") or [] if isinstance(c, dict)]


def _row(obj: Obj, kind: str, ready: int, desired: int, status: str, tone: Tone) -> Workload:
    meta = obj.get("metadata") or {}
    return Workload(kind=kind, namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
                    ready=ready, desired=desired, status=status, tone=tone.value, images=_images(obj),
                    created=str(meta.get("creationTimestamp") or ""))


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def _condition(obj: Obj, kind: str) -> Obj:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return {}


def deployment(obj: Obj) -> Workload:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas"), 1)
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    total = _int(status.get("replicas"))
    if spec.get("paused"):
        return _row(obj, "Deployment", ready, desired, "paused", Tone.WARN)
    if _condition(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded":
        return _row(obj, "Deployment", ready, desired, "rollout stuck", Tone.BAD)
    if ready >= desired and updated >= desired and total == desired:
        return _row(obj, "Deployment", ready, desired, "available", Tone.OK)
    if updated < desired or total != desired:
        return _row(obj, "Deployment", ready, desired, "rolling out", Tone.BUSY)
    return _row(obj, "Deployment", ready, desired, "not all ready", Tone.WARN)


def statefulset(obj: Obj) -> Workload:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas"), 1)
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    strategy = spec.get("updateStrategy") or {}
    partition = _int((strategy.get("rollingUpdate") or {}).get("partition"))
    all_up = ready >= desired and _int(status.get("replicas")) == desired
    if strategy.get("type") == "OnDelete":  # pods change only when someone deletes them: nothing to wait for
        if all_up and updated < desired:
            return _row(obj, "StatefulSet", ready, desired, f"{desired - updated} to update on delete", Tone.OK)
        updated = desired
    if all_up and updated >= desired - partition:
        return _row(obj, "StatefulSet", ready, desired, "available", Tone.OK)
    if status.get("currentRevision") != status.get("updateRevision") and updated < desired - partition:
        return _row(obj, "StatefulSet", ready, desired, "rolling out", Tone.BUSY)
    starting = "starting" if spec.get("podManagementPolicy") == "Parallel" else "starting in order"
    return _row(obj, "StatefulSet", ready, desired, starting if ready < desired else "not all ready",
                Tone.BUSY if ready < desired else Tone.WARN)


def daemonset(obj: Obj) -> Workload:
    status = obj.get("status") or {}
    desired, ready = _int(status.get("desiredNumberScheduled")), _int(status.get("numberReady"))
    if ready >= desired:
        return _row(obj, "DaemonSet", ready, desired, "available", Tone.OK)
    updated = _int(status.get("updatedNumberScheduled"))
    if updated < desired:
        return _row(obj, "DaemonSet", ready, desired, "rolling out", Tone.BUSY)
    return _row(obj, "DaemonSet", ready, desired, "not all ready", Tone.WARN)


def job(obj: Obj) -> Workload:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("completions"), 1)
    done = _int(status.get("succeeded"))
    state = next((c.get("type") for c in status.get("conditions") or [] if isinstance(c, dict)
                  and c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended")), "")
    if state == "Complete":
        return _row(obj, "Job", done, desired, "complete", Tone.DONE)
    if state == "Failed":
        return _row(obj, "Job", done, desired, "failed", Tone.BAD)
    if state == "Suspended":
        return _row(obj, "Job", done, desired, "suspended", Tone.WARN)
    failed = _int(status.get("failed"))
    return _row(obj, "Job", done, desired, f"running, {failed} failed" if failed else "running",
                Tone.WARN if failed else Tone.BUSY)


def cronjob(obj: Obj) -> Workload:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    active = len(status.get("active") or [])
    schedule = str(spec.get("schedule") or "")
    if spec.get("suspend"):
        return _row(obj, "CronJob", active, active, f"suspended ({schedule})", Tone.WARN)
    return _row(obj, "CronJob", active, active, f"{active} running ({schedule})" if active else f"every {schedule}",
                Tone.BUSY if active else Tone.OK)


def workloads(deployments: list[Obj], daemonsets: list[Obj], jobs: list[Obj],
              cronjobs: list[Obj] | None = None, statefulsets: list[Obj] | None = None) -> list[Workload]:
    rows = [*map(deployment, deployments), *map(statefulset, statefulsets or []), *map(daemonset, daemonsets),
            *map(job, jobs), *map(cronjob, cronjobs or [])]
    order = {"Deployment": 0, "StatefulSet": 1, "DaemonSet": 2, "CronJob": 3, "Job": 4}
    return sorted(rows, key=lambda w: (order[w["kind"]], w["namespace"], w["name"]))
