"""Pod rows grouped by the board they run on, with kubectl's status word and a colour for it."""

from __future__ import annotations

from typing import Any

from core.kube.podstatus import pod_status
from web.boards import natural_key
from web.model import Pod, PodGroup, Tone

Obj = dict[str, Any]

STARTING = {"Pending", "ContainerCreating", "PodInitializing", "Terminating"}
FINISHED = {"Completed", "Succeeded"}
FAILING = {"CrashLoopBackOff", "Error", "Failed", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
           "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "OOMKilled",
           "ContainerCannotRun", "Evicted", "Unknown", "NodeLost", "DeadlineExceeded", "BackoffLimitExceeded"}


def tone(status: str, all_ready: bool) -> Tone:
    if status == "Running":
        return Tone.OK if all_ready else Tone.BUSY
    if status in STARTING or (status.startswith("Init:") and not any(f in status for f in FAILING)):
        return Tone.BUSY
    if status in FINISHED:
        return Tone.DONE
    if status in FAILING or status.startswith(("Init:", "ExitCode:", "Signal:")):
        return Tone.BAD
    return Tone.WARN


def owner(pod: Obj) -> str:
    """The workload behind a pod: a ReplicaSet's pods are shown as their Deployment's."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if not isinstance(ref, dict) or not ref.get("controller"):
            continue
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
            return f"Deployment/{name.removesuffix(f'-{template_hash}')}"
        return f"{kind}/{name}"
    return ""


def pod(obj: Obj) -> Pod:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    statuses = [cs for cs in status.get("containerStatuses") or [] if isinstance(cs, dict)]
    total = len((obj.get("spec") or {}).get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    word = pod_status(obj)
    return Pod(namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""), status=word,
               tone=tone(word, total > 0 and ready == total).value, ready=f"{ready}/{total}",
               restarts=sum(int(cs.get("restartCount") or 0) for cs in statuses), ip=str(status.get("podIP") or ""),
               owner=owner(obj), created=str(meta.get("creationTimestamp") or ""))


def by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for p in pods:
        out.setdefault(str((p.get("spec") or {}).get("nodeName") or ""), []).append(p)
    return out


def groups(board_order: list[str], pods_by_node: dict[str, list[Obj]]) -> list[PodGroup]:
    """One group per board in `board_order` (empty ones too), then boards we do not know, then unscheduled."""
    known = set(board_order)
    others = sorted((n for n in pods_by_node if n and n not in known), key=natural_key)
    out = []
    for name in [*board_order, *others, ""]:
        rows = sorted(map(pod, pods_by_node.get(name, [])), key=lambda p: (p["namespace"], natural_key(p["name"])))
        if rows or name in known:
            out.append(PodGroup(board=name, pods=rows))
    return out
