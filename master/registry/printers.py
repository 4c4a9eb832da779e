"""The table columns of each built-in kind, as Kubernetes' own printers define them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.kube.podstatus import pod_status
from master.registry.tables import (
    AGE,
    NAME,
    Column,
    TableDef,
    _get,
    map_selector_cell,
    selector_cell,
    since,
    workload_columns,
)

Obj = dict[str, Any]


def pod_ready(pod: Obj, now: dt.datetime) -> str:
    statuses = _get(pod, "status", "containerStatuses") or []
    total = len(_get(pod, "spec", "containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    return f"{ready}/{total}"


def pod_restarts(pod: Obj, now: dt.datetime) -> str:
    restarts, last = 0, ""
    for cs in _get(pod, "status", "containerStatuses") or []:
        restarts += int(cs.get("restartCount") or 0)
        finished = _get(cs, "lastState", "terminated", "finishedAt")
        if finished and finished > last:
            last = finished
    if restarts and last:
        return f"{restarts} ({since(last, now)} ago)"
    return str(restarts)


POD = TableDef((
    NAME,
    Column("Ready", pod_ready, description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", lambda o, n: pod_status(o), description="The aggregate status of the containers in "
           "this pod."),
    Column("Restarts", pod_restarts, description="The number of times the containers in this pod have been "
           "restarted and when the last container in this pod has restarted."),
    AGE,
    Column("IP", lambda o, n: _get(o, "status", "podIP") or "<none>", priority=1,
           description="IP address allocated to the pod. Routable at least within the cluster."),
    Column("Node", lambda o, n: _get(o, "spec", "nodeName") or "<none>", priority=1,
           description="Name of the Node this pod is running on."),
    Column("Nominated Node", lambda o, n: _get(o, "status", "nominatedNodeName") or "<none>", priority=1,
           description="Name of the node nominated by the scheduler."),
    Column("Readiness Gates", lambda o, n: "<none>", priority=1,
           description="The readiness gates of this pod."),
))


def node_status(node: Obj, now: dt.datetime) -> str:
    conds = {c.get("type"): c.get("status") for c in _get(node, "status", "conditions") or []}
    ready = conds.get("Ready")
    parts = ["Ready" if ready == "True" else "NotReady" if ready in ("False",) else "Unknown"]
    if _get(node, "spec", "unschedulable"):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Obj, now: dt.datetime) -> str:
    labels = _get(node, "metadata", "labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")
                   and "/" in k)
    roles += [str(v) for k, v in labels.items() if k == "kubernetes.io/role"]
    return ",".join(r for r in roles if r) or "<none>"


def node_address(kind: str) -> Any:
    def cell(node: Obj, now: dt.datetime) -> str:
        for a in _get(node, "status", "addresses") or []:
            if a.get("type") == kind:
                return str(a.get("address"))
        return "<none>"
    return cell


NODE = TableDef((
    NAME,
    Column("Status", node_status, description="The status of the node"),
    Column("Roles", node_roles, description="The roles of the node"),
    AGE,
    Column("Version", lambda o, n: _get(o, "status", "nodeInfo", "kubeletVersion") or "",
           description="Kubelet Version reported by the node."),
    Column("Internal-IP", node_address("InternalIP"), priority=1, description="List of internal IPs."),
    Column("External-IP", node_address("ExternalIP"), priority=1, description="List of external IPs."),
    Column("OS-Image", lambda o, n: _get(o, "status", "nodeInfo", "osImage") or "<unknown>", priority=1,
           description="OS Image reported by the node."),
    Column("Kernel-Version", lambda o, n: _get(o, "status", "nodeInfo", "kernelVersion") or "<unknown>",
           priority=1, description="Kernel Version reported by the node."),
    Column("Container-Runtime", lambda o, n: _get(o, "status", "nodeInfo", "containerRuntimeVersion")
           or "<unknown>", priority=1, description="Container Runtime Version reported by the node."),
))


def service_ports(svc: Obj, now: dt.datetime) -> str:
    parts = []
    for p in _get(svc, "spec", "ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        parts.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def service_external(svc: Obj, now: dt.datetime) -> str:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName", ""))
    ips = [i.get("ip") or i.get("hostname") for i in _get(svc, "status", "loadBalancer", "ingress") or []]
    ips += spec.get("externalIPs") or []
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


SERVICE = TableDef((
    NAME,
    Column("Type", lambda o, n: _get(o, "spec", "type") or "", description="The type of the service."),
    Column("Cluster-IP", lambda o, n: _get(o, "spec", "clusterIP") or "<none>",
           description="The IP address of the service."),
    Column("External-IP", service_external, description="The external IP address of the service."),
    Column("Port(s)", service_ports, description="The ports of the service."),
    AGE,
    Column("Selector", map_selector_cell, priority=1, description="The selector of the service."),
))


def _num(o: Obj, *path: str) -> int:
    return int(_get(o, *path) or 0)


DEPLOYMENT = TableDef((
    NAME,
    Column("Ready", lambda o, n: f"{_num(o, 'status', 'readyReplicas')}/{_num(o, 'spec', 'replicas')}",
           description="Number of the pod with ready state"),
    Column("Up-to-date", lambda o, n: _num(o, "status", "updatedReplicas"), type="integer",
           description="Total number of non-terminated pods targeted by this deployment that have the "
           "desired template spec."),
    Column("Available", lambda o, n: _num(o, "status", "availableReplicas"), type="integer",
           description="Total number of available pods (ready for at least minReadySeconds) targeted by "
           "this deployment."),
    AGE,
    *workload_columns(),
))

REPLICASET = TableDef((
    NAME,
    Column("Desired", lambda o, n: _num(o, "spec", "replicas"), type="integer",
           description="Number of desired pods."),
    Column("Current", lambda o, n: _num(o, "status", "replicas"), type="integer",
           description="Number of actual replicas."),
    Column("Ready", lambda o, n: _num(o, "status", "readyReplicas"), type="integer",
           description="The number of ready replicas for this replica set."),
    AGE,
    *workload_columns(),
))


def _node_selector(o: Obj, n: dt.datetime) -> str:
    sel = _get(o, "spec", "template", "spec", "nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"


DAEMONSET = TableDef((
    NAME,
    Column("Desired", lambda o, n: _num(o, "status", "desiredNumberScheduled"), type="integer",
           description="The desired number of daemon pods."),
    Column("Current", lambda o, n: _num(o, "status", "currentNumberScheduled"), type="integer",
           description="The number of nodes running at least one daemon pod."),
    Column("Ready", lambda o, n: _num(o, "status", "numberReady"), type="integer",
           description="The number of nodes that should be running the daemon pod and have one or more "
           "running and ready."),
    Column("Up-to-date", lambda o, n: _num(o, "status", "updatedNumberScheduled"), type="integer",
           description="The total number of nodes that are running updated daemon pod"),
    Column("Available", lambda o, n: _num(o, "status", "numberAvailable"), type="integer",
           description="The number of nodes that should be running the daemon pod and have one or more "
           "available."),
    Column("Node Selector", _node_selector, description="The node selector of the daemon set."),
    AGE,
    *workload_columns(),
))


def job_status(o: Obj, now: dt.datetime) -> str:
    for c in _get(o, "status", "conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended"):
            return str(c["type"])
    return "Running"


def job_completions(o: Obj, now: dt.datetime) -> str:
    completions = _get(o, "spec", "completions")
    succeeded = _num(o, "status", "succeeded")
    if completions is None:
        return f"{succeeded}/1 of {_num(o, 'spec', 'parallelism')}"
    return f"{succeeded}/{completions}"


def job_duration(o: Obj, now: dt.datetime) -> str:
    start = _get(o, "status", "startTime")
    if not start:
        return ""
    end = _get(o, "status", "completionTime")
    t0 = dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    t1 = dt.datetime.fromisoformat(str(end).replace("Z", "+00:00")) if end else now
    from master.registry.tables import human_duration
    return human_duration((t1 - t0).total_seconds())


JOB = TableDef((
    NAME,
    Column("Status", job_status, description="Status of the job."),
    Column("Completions", job_completions, description="The desired number of successfully finished pods "
           "the job should be run with."),
    Column("Duration", job_duration, description="Time required to complete the job."),
    AGE,
    *workload_columns(),
))

NAMESPACE = TableDef((
    NAME,
    Column("Status", lambda o, n: _get(o, "status", "phase") or "", description="The status of the namespace"),
    AGE,
))


def endpoints_cell(o: Obj, now: dt.datetime) -> str:
    parts: list[str] = []
    for subset in o.get("subsets") or []:
        for addr in subset.get("addresses") or []:
            for port in subset.get("ports") or [{}]:
                parts.append(f"{addr.get('ip')}:{port.get('port')}" if port else str(addr.get("ip")))
    if not parts:
        return "<none>"
    if len(parts) > 3:
        return ",".join(parts[:3]) + f" + {len(parts) - 3} more..."
    return ",".join(parts)


ENDPOINTS = TableDef((NAME, Column("Endpoints", endpoints_cell, description="Endpoints of the service"), AGE))
CONFIGMAP = TableDef((NAME, Column("Data", lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                   type="integer", description="Number of data entries."), AGE))
SECRET = TableDef((
    NAME,
    Column("Type", lambda o, n: o.get("type", ""), description="The type of the secret"),
    Column("Data", lambda o, n: len(o.get("data") or {}), type="integer",
           description="The number of entries in the secret"),
    AGE,
))
SERVICEACCOUNT = TableDef((NAME, Column("Secrets", lambda o, n: len(o.get("secrets") or []), type="integer",
                                        description="The number of secrets"), AGE))
LEASE = TableDef((NAME, Column("Holder", lambda o, n: _get(o, "spec", "holderIdentity") or "",
                               description="The holder of the lease"), AGE))


def _event_object(o: Obj, now: dt.datetime) -> str:
    inv = o.get("involvedObject") or {}
    return f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"


def _last_seen(o: Obj, now: dt.datetime) -> str:
    ts = o.get("lastTimestamp") or o.get("eventTime") or _get(o, "metadata", "creationTimestamp")
    return since(ts, now)


EVENT = TableDef((
    Column("Last Seen", _last_seen, description="Time when last event from this source was seen"),
    Column("Type", lambda o, n: o.get("type", ""), description="Type of this event (Normal, Warning)"),
    Column("Reason", lambda o, n: o.get("reason", ""), description="Short, machine understandable string"),
    Column("Object", _event_object, description="The object that this event is about."),
    Column("Subobject", lambda o, n: _get(o, "involvedObject", "fieldPath") or "", priority=1,
           description="The subobject"),
    Column("Source", lambda o, n: _get(o, "source", "component") or "", priority=1,
           description="The component reporting this event."),
    Column("Message", lambda o, n: o.get("message", ""), description="A human-readable description"),
    Column("First Seen", lambda o, n: since(o.get("firstTimestamp"), n), priority=1,
           description="The time at which the event was first recorded."),
    Column("Count", lambda o, n: o.get("count", 1), type="integer", priority=1,
           description="The number of times this event has occurred."),
    Column("Name", lambda o, n: _get(o, "metadata", "name") or "", priority=1, description="Name"),
))

__all__ = ["selector_cell"]
