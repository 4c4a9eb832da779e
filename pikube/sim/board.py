"""A simulated board: a fake agent that joins a real master over HTTPS with its own node identity.

It does what a real agent does at the API, and nothing else: registers its
Node (labels, capacity, addresses, Ready), renews its Lease in
`kube-node-lease`, watches the pods bound to it (`fieldSelector=
spec.nodeName=NAME`), "runs" them (`pikube.sim.pods`) giving them addresses
from its `podCIDR`, reports their status, and confirms graceful deletions by
deleting with grace 0. `halt()` makes it fall silent the way a board that
loses power does: no goodbye, nothing cleaned up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from core import errors, wellknown
from core.kube import timefmt
from pikube.sim.api import Api, Credentials, resource_path
from pikube.sim.pods import SimPod

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LEASE_NS = "kube-node-lease"


def microtime(t: float | None = None) -> str:
    return timefmt.micro(t)


@dataclass
class BoardSpec:
    name: str
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    arch: str = "arm64"
    address: str = "192.168.50.10"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    lease_seconds: float = 10.0  # renew interval (a kubelet renews every 10 s for a 40 s lease)
    status_seconds: float = 60.0  # node status heartbeat
    start_delay: float = 0.2  # pod seen -> containers running
    restart_delay: float = 0.3  # container exit -> restarted
    watch_pods: bool = True  # False: a board that only heartbeats (benchmarks of the scheduler)


class Board:
    def __init__(self, spec: BoardSpec, creds: Credentials) -> None:
        self.spec = spec
        self.name = spec.name
        self.api = Api(creds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.pods: dict[str, SimPod] = {}  # uid -> pod
        self._cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self._ips: set[str] = set()
        self._watch: list[Any] = []  # the open watch stream's socket
        self.node_uid = ""
        self._since = microtime()[:19] + "Z"  # conditions' lastTransitionTime: they never change

    # --- life ---------------------------------------------------------------------------------
    def start(self) -> Board:
        self.register()
        self.renew_lease()
        targets = [self._heartbeat_loop]
        if self.spec.watch_pods:
            targets += [self._watch_loop, self._tick_loop]
        for target in targets:
            t = threading.Thread(target=target, name=f"sim-{self.name}-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def halt(self) -> None:
        """Go silent at once, as a board losing power does."""
        self._stop.set()
        for sock in list(self._watch):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # the watch thread's read returns at once
        deadline = time.monotonic() + 2.0
        for t in self._threads:
            t.join(timeout=max(deadline - time.monotonic(), 0.01))
        self.api.close()

    stop = halt

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    # --- node and lease -------------------------------------------------------------------------
    def _node_body(self) -> Obj:
        s = self.spec
        labels = {"kubernetes.io/arch": s.arch, "kubernetes.io/os": "linux", "kubernetes.io/hostname": s.name,
                  "beta.kubernetes.io/arch": s.arch, "beta.kubernetes.io/os": "linux", **s.labels}
        # Like a real agent, it publishes where its local-path volumes would live (nothing is made there).
        annotations = {wellknown.LOCAL_PATH_DIR_ANNOTATION: "/var/lib/pikube/storage"}
        body: Obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": s.name, "labels": labels,
                                                                      "annotations": annotations}, "spec": {}}
        if s.taints:
            body["spec"]["taints"] = s.taints
        return body

    def node_status(self) -> Obj:
        s, now = self.spec, microtime()[:19] + "Z"
        resources = {"cpu": s.cpu, "memory": s.memory, "pods": str(s.pods)}
        conditions = [{"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": m,
                       "lastHeartbeatTime": now, "lastTransitionTime": self._since} for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"))]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                           "lastTransitionTime": self._since})
        return {"capacity": resources, "allocatable": resources, "conditions": conditions,
                "addresses": [{"type": "InternalIP", "address": s.address}, {"type": "Hostname", "address": s.name}],
                "nodeInfo": {"architecture": s.arch, "operatingSystem": "linux", "osImage": "pikube simulated board",
                             "kernelVersion": "6.1.0-sim", "containerRuntimeVersion": "sim://1",
                             "kubeletVersion": "v1.33.0-pikube", "kubeProxyVersion": "v1.33.0-pikube",
                             "machineID": "", "systemUUID": "", "bootID": ""}}

    def register(self) -> None:
        path = resource_path("v1", "nodes")
        try:
            node = self.api.create(path, self._node_body())
        except errors.AlreadyExists:
            node = self.api.patch(f"{path}/{self.name}", {"metadata": {"labels": self._node_body()["metadata"][
                "labels"]}})
        self.node_uid = node.get("metadata", {}).get("uid", "")
        self.post_status()

    def post_status(self) -> None:
        node = self.api.patch(resource_path("v1", "nodes", name=self.name, sub="status"),
                              {"status": self.node_status()})
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr and self._cidr is None:
            self._cidr = ipaddress.ip_network(cidr)

    def renew_lease(self) -> None:
        path = resource_path("coordination.k8s.io/v1", "leases", LEASE_NS)
        try:
            self.api.patch(f"{path}/{self.name}", {"spec": {"renewTime": microtime(), "holderIdentity": self.name}})
        except errors.NotFound:
            owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.node_uid}] \
                if self.node_uid else []
            self.api.create(path, {"metadata": {"name": self.name, "namespace": LEASE_NS, "ownerReferences": owner},
                                   "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                                            "renewTime": microtime()}})

    def _heartbeat_loop(self) -> None:
        last_status = time.monotonic()
        while not self._stop.wait(self.spec.lease_seconds):
            try:
                self.renew_lease()
                if time.monotonic() - last_status >= self.spec.status_seconds or self._cidr is None:
                    self.post_status()
                    last_status = time.monotonic()
            except errors.ApiError as exc:
                if not self._stop.is_set():
                    log.info("board %s: heartbeat failed: %s", self.name, exc.message)

    # --- pods -------------------------------------------------------------------------------------
    def _watch_loop(self) -> None:
        path = resource_path("v1", "pods")
        selector = {"fieldSelector": f"spec.nodeName={self.name}"}
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    listing = self.api.get(path, selector)
                    self._sync_list(listing.get("items") or [])
                    rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
                params = {**selector, "resourceVersion": rv, "timeoutSeconds": "50", "allowWatchBookmarks": "true"}
                for event in self.api.watch(path, params, self._stop, self._watch):
                    obj = event.get("object") or {}
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if event.get("type") == "DELETED":
                        self._forget(obj)
                    elif event.get("type") in ("ADDED", "MODIFIED"):
                        self._observe(obj)
            except errors.Gone:
                rv = ""
            except errors.ApiError as exc:
                if self._stop.is_set():
                    return
                log.info("board %s: pod watch: %s", self.name, exc.message)
                rv = ""
                self._stop.wait(0.5)

    def _sync_list(self, items: list[Obj]) -> None:
        uids = {(p.get("metadata") or {}).get("uid") for p in items}
        with self._lock:
            for uid in [u for u in self.pods if u not in uids]:
                self._release(self.pods.pop(uid))
        for pod in items:
            self._observe(pod)

    def _observe(self, pod: Obj) -> None:
        m = pod.get("metadata") or {}
        with self._lock:
            sim = self.pods.get(m.get("uid", ""))
            if sim is None:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    return  # finished before we (re)started: nothing to run
                sim = SimPod.from_pod(pod, time.time())
                self.pods[sim.uid] = sim
            sim.deleting = bool(m.get("deletionTimestamp"))

    def _forget(self, pod: Obj) -> None:
        with self._lock:
            sim = self.pods.pop((pod.get("metadata") or {}).get("uid", ""), None)
            if sim is not None:
                self._release(sim)

    def _release(self, sim: SimPod) -> None:
        self._ips.discard(sim.ip)

    def _allocate_ip(self) -> str:
        if self._cidr is None:
            return ""
        for host in self._cidr.hosts():
            ip = str(host)
            if not ip.endswith(".1") and ip not in self._ips:
                self._ips.add(ip)
                return ip
        return ""

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.05):
            with self._lock:
                pods = list(self.pods.values())
            for sim in pods:
                if self._stop.is_set():
                    return
                try:
                    self._tick(sim)
                except errors.NotFound:
                    self._forget({"metadata": {"uid": sim.uid}})
                except errors.ApiError as exc:
                    log.debug("board %s: pod %s: %s", self.name, sim.name, exc.message)

    def event(self, sim: SimPod, reason: str, message: str, kind: str = "Normal") -> None:
        """An event about a pod, from this board's kubelet (as `kubectl describe pod` shows them)."""
        stamp = microtime()[:19] + "Z"
        body = {"metadata": {"name": f"{sim.name}.{time.time_ns():x}", "namespace": sim.namespace},
                "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": sim.namespace,
                                   "name": sim.name, "uid": sim.uid},
                "reason": reason, "message": message, "type": kind, "count": 1,
                "source": {"component": "kubelet", "host": self.name},
                "firstTimestamp": stamp, "lastTimestamp": stamp, "reportingComponent": "kubelet",
                "reportingInstance": self.name}
        with contextlib.suppress(errors.ApiError):
            self.api.create(resource_path("v1", "events", sim.namespace), body)

    def _tick(self, sim: SimPod) -> None:
        path = resource_path("v1", "pods", sim.namespace, sim.name)
        if sim.deleting:
            for c in sim.spec.get("containers") or []:
                self.event(sim, "Killing", f"Stopping container {c.get('name', '')}")
            self.api.delete(path, {"gracePeriodSeconds": 0, "preconditions": {"uid": sim.uid}})
            self._forget({"metadata": {"uid": sim.uid}})
            return
        if not sim.ip:
            with self._lock:
                sim.ip = self._allocate_ip()
            if not sim.ip:
                return  # no podCIDR yet
        now = time.time()
        sim.step(now, self.spec.start_delay, self.spec.restart_delay)
        status = sim.status(self.spec.address, now)
        if status == sim.reported:
            return
        self.api.patch(f"{path}/status", {"status": status})
        sim.reported = status
