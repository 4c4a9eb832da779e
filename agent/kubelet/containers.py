"""How a pod's container spec becomes a Docker container: command, env, mounts, limits, namespaces.

Pure translation (`create_args`), so the rules can be tested without Docker:
`command` replaces the image's ENTRYPOINT and `args` its CMD (as in Kubernetes),
`$(VAR)` references in them are expanded from the container's env, CPU limits
become a CFS quota, CPU requests shares, memory limits a hard limit with no swap,
and the container joins the pause container's network, IPC (and, with
`shareProcessNamespace`, PID) namespaces.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agent.kubelet.envs import expand
from agent.runtime import labels as L
from core import wellknown
from core.kube.quantity import bytes_value, cpu_millis

Obj = dict[str, Any]
CFS_PERIOD = 100_000
LOG_OPTS = {"max-size": "10m", "max-file": "2"}  # an SD card does not want unbounded logs


@dataclass(frozen=True)
class CreateArgs:
    name: str
    image: str
    labels: dict[str, str]
    host_config: Obj
    config: Obj


def spec_hash(container: Obj) -> str:
    """Changes when the container's spec does; a running container with another hash is restarted."""
    return hashlib.sha256(json.dumps(container, sort_keys=True).encode()).hexdigest()[:16]


def pod_labels(pod: Obj, node: str, kind: L.Kind, name: str, attempt: int) -> dict[str, str]:
    meta = pod["metadata"]
    return {L.NODE: node, L.KIND: kind.value, L.POD_UID: str(meta["uid"]), L.POD_NAME: str(meta["name"]),
            L.POD_NAMESPACE: str(meta.get("namespace", "default")), L.CONTAINER_NAME: name,
            L.RESTART_COUNT: str(attempt),
            L.GRACE: str((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))}


def _limits(resources: Obj) -> Obj:
    out: Obj = {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if "cpu" in limits:
        millis = cpu_millis(limits["cpu"])
        out["cpu_period"] = CFS_PERIOD
        out["cpu_quota"] = max(1000, millis * CFS_PERIOD // 1000)
    cpu_req = requests.get("cpu", limits.get("cpu"))
    if cpu_req is not None:
        out["cpu_shares"] = max(2, cpu_millis(cpu_req) * 1024 // 1000)
    if "memory" in limits:
        mem = int(bytes_value(limits["memory"]))
        out["mem_limit"] = mem
        out["memswap_limit"] = mem
    return out


def _security(pod: Obj, container: Obj) -> tuple[Obj, Obj]:
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = container.get("securityContext") or {}
    host: Obj = {}
    config: Obj = {}
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    gid = sc.get("runAsGroup", psc.get("runAsGroup"))
    if uid is not None:
        config["user"] = f"{uid}:{gid}" if gid is not None else str(uid)
    if sc.get("privileged"):
        host["privileged"] = True
    caps = sc.get("capabilities") or {}
    if caps.get("add"):
        host["cap_add"] = list(caps["add"])
    if caps.get("drop"):
        host["cap_drop"] = list(caps["drop"])
    if sc.get("readOnlyRootFilesystem"):
        host["read_only"] = True
    if psc.get("supplementalGroups"):
        host["group_add"] = [str(g) for g in psc["supplementalGroups"]]
    return host, config


def create_args(pod: Obj, container: Obj, kind: L.Kind, attempt: int, node: str, sandbox_id: str,
                env: dict[str, str], binds: list[str]) -> CreateArgs:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    name = str(container["name"])
    labels = pod_labels(pod, node, kind, name, attempt)
    labels[L.SPEC_HASH] = spec_hash(container)
    labels[wellknown.SANDBOX_LABEL] = sandbox_id
    host: Obj = {
        "network_mode": f"container:{sandbox_id}",
        "ipc_mode": f"container:{sandbox_id}",
        "binds": binds,
        "log_config": {"type": "json-file", "config": LOG_OPTS},
        **_limits(container.get("resources") or {}),
    }
    if spec.get("shareProcessNamespace"):
        host["pid_mode"] = f"container:{sandbox_id}"
    sec_host, sec_config = _security(pod, container)
    host.update(sec_host)
    config: Obj = {"environment": [f"{k}={v}" for k, v in env.items()], **sec_config}
    if container.get("command"):
        config["entrypoint"] = [expand(str(a), env) for a in container["command"]]
    if container.get("args"):  # with a command but no args, Docker drops the image's CMD, as Kubernetes does
        config["command"] = [expand(str(a), env) for a in container.get("args") or []]
    if container.get("workingDir"):
        config["working_dir"] = str(container["workingDir"])
    if container.get("ports"):  # informational, as in Kubernetes; Docker refuses to expose ports in a shared netns
        labels["io.kubernetes.container.ports"] = json.dumps(container["ports"], sort_keys=True)
    config["tty"] = bool(container.get("tty"))
    config["stdin_open"] = bool(container.get("stdin"))
    docker_name = L.container_name(kind, str(meta["name"]), str(meta.get("namespace", "default")),
                                   str(meta["uid"]), name, attempt)
    return CreateArgs(name=docker_name, image=str(container.get("image", "")), labels=labels, host_config=host,
                      config=config)


def sandbox_args(pod: Obj, node: str, attempt: int, image: str, binds: list[str]) -> CreateArgs:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    hostname = str(spec.get("hostname") or meta["name"])[:63].rstrip("-.")
    labels = pod_labels(pod, node, L.Kind.SANDBOX, L.SANDBOX_NAME, attempt)
    host: Obj = {"network_mode": "none", "ipc_mode": "shareable", "binds": binds,
                 "log_config": {"type": "json-file", "config": LOG_OPTS}, "cpu_shares": 2}
    if spec.get("hostNetwork"):
        host["network_mode"] = "host"
        hostname = ""
    config: Obj = {"hostname": hostname} if hostname else {}
    docker_name = L.container_name(L.Kind.SANDBOX, str(meta["name"]), str(meta.get("namespace", "default")),
                                   str(meta["uid"]), L.SANDBOX_NAME, attempt)
    return CreateArgs(name=docker_name, image=image, labels=labels, host_config=host, config=config)
