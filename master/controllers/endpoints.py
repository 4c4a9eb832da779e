"""The Endpoints controller: for each Service with a selector, the addresses of the pods behind it.

Every pod the selector matches that has an IP and is neither finished nor being
deleted is an address: under `addresses` when Ready, under `notReadyAddresses`
otherwise. With `publishNotReadyAddresses` every such pod is under `addresses`,
terminating ones included, so the peers of a StatefulSet member still find it
while it shuts down. A named `targetPort` is resolved per pod from its container
ports, so pods of different versions may expose it on different numbers; pods
are grouped into subsets by their resolved ports, as Kubernetes packs them. A
headless Service (`clusterIP: None`) may have no ports: its pods are then listed
in a subset without ports, for DNS; an address carries the pod's `hostname`
when the pod's `subdomain` names the Service (DNS answers
`<hostname>.<service>.<ns>.svc`); its Endpoints carry the
`service.kubernetes.io/headless` label besides the Service's own.

Endpoints of a Service that is gone are deleted. Services without a selector
(such as `kubernetes`) and ExternalName Services are left alone: their
Endpoints, if any, belong to someone else. So, as in Kubernetes, the controller
looks at an Endpoints object when it is deleted (to put it back), not whenever
one is written: Endpoints applied just before their selector-less Service
would otherwise be deleted as leftovers by a cache that has not seen the
Service yet. It also looks when Endpoints of a Service it manages change (a hand
edit is put right at once); leftovers of Services deleted while the master was
down are swept once at start-up.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from core.kube import timefmt
from core.kube.selectors import LabelSelector
from master.client import Env, Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.keys import by_namespace

Obj = dict[str, Any]
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS = "service.kubernetes.io/headless"
# Endpoints used as a leader-election lock have no Service: the start-up sweep leaves them alone.
LEADER = "control-plane.alpha.kubernetes.io/leader"


def resolve_port(svc_port: Obj, pod: Obj) -> int | None:
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def is_headless(svc: Obj) -> bool:
    """No cluster IP: DNS answers with the pods' addresses (Kubernetes' !IsServiceIPSet)."""
    return (svc.get("spec") or {}).get("clusterIP") in (None, "", "None")


def manages(svc: Obj) -> bool:
    """This controller writes the Service's Endpoints: it has a selector and is not an ExternalName alias."""
    spec = svc.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def subsets_for(svc: Obj, pods: list[Obj]) -> list[Obj]:
    spec = svc.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    portless = not spec.get("ports") and spec.get("clusterIP") == "None"  # DNS-only: addresses without ports
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or podutil.is_terminal(pod) or (podutil.meta(pod).get("deletionTimestamp") and not publish_all):
            continue
        ports = []
        for sp in spec.get("ports") or []:
            number = resolve_port(sp, pod)
            if number is not None:
                ports.append((str(sp.get("name") or ""), number, str(sp.get("protocol") or "TCP")))
        if not ports and not portless:
            continue
        pm = podutil.meta(pod)
        address: Obj = {"ip": ip, "targetRef": {"kind": "Pod", "namespace": pm.get("namespace", ""),
                                                "name": pm.get("name", ""), "uid": pm.get("uid", "")}}
        pod_spec = pod.get("spec") or {}
        if pod_spec.get("hostname") and pod_spec.get("subdomain") == podutil.meta(svc).get("name"):
            address["hostname"] = pod_spec["hostname"]  # DNS: <hostname>.<service>.<ns>.svc (StatefulSet pods)
        if pod_spec.get("nodeName"):
            address["nodeName"] = pod_spec["nodeName"]
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish_all or podutil.is_ready(pod) else not_ready).append(address)
    subsets = []
    for ports_key, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ports_key:
            subset["ports"] = [{"name": n, "port": p, "protocol": pr} if n else {"port": p, "protocol": pr}
                               for n, p, pr in ports_key]
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        subsets.append(subset)
    return subsets


class EndpointsController(Controller):
    name = "endpoints"

    def __init__(self, env: Env) -> None:
        super().__init__(env)
        self.services: Informer = env.informers.informer(self.kinds.services)
        self.endpoints: Informer = env.informers.informer(self.kinds.endpoints)
        self.pods: Informer = env.informers.informer(self.kinds.pods)
        self.pods.add_indexer("namespace", by_namespace)
        self.services.add_indexer("namespace", by_namespace)
        self.primary = self.services
        self.services.add_handler(lambda old, new: self.enqueue(new or old))
        self.endpoints.add_handler(self._endpoints_changed)
        self.pods.add_handler(self._pod_changed)

    def start(self) -> list[threading.Thread]:
        if self.services.synced.is_set() and self.endpoints.synced.is_set():
            self.queue_leftovers()
        return super().start()

    def queue_leftovers(self) -> None:
        """Look once at every Endpoints object (Kubernetes' checkLeftoverEndpoints at start-up): those of a
        Service deleted while no controller was watching have no deletion event left to bring them up."""
        for ep in self.endpoints.list():
            if LEADER not in (podutil.meta(ep).get("annotations") or {}):
                self.enqueue(ep)

    def _endpoints_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            self.enqueue(old)  # deleted: put back if its Service is still managed here
            return
        svc = self.services.get(podutil.meta(new).get("namespace", ""), podutil.meta(new).get("name", ""))
        if svc is not None and manages(svc):
            self.enqueue(new)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        for pod in {id(p): p for p in (old, new) if p is not None}.values():
            labels = podutil.meta(pod).get("labels") or {}
            for svc in self.services.by_index("namespace", podutil.meta(pod).get("namespace", "")):
                if manages(svc) and LabelSelector.from_set(svc["spec"]["selector"]).matches(labels):
                    self.enqueue(svc)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.get(ns, name)
        current = self.endpoints.get(ns, name)
        if svc is None:
            if current is not None:
                self.client.delete(self.kinds.endpoints, ns, name, uid=current["metadata"]["uid"])
            return
        if not manages(svc):
            return
        sel = LabelSelector.from_set((svc.get("spec") or {}).get("selector"))
        pods = [p for p in self.pods.by_index("namespace", ns) if sel.matches(podutil.meta(p).get("labels"))]
        subsets = subsets_for(svc, pods)
        labels = {k: v for k, v in (podutil.meta(svc).get("labels") or {}).items() if k != HEADLESS}
        if is_headless(svc):
            labels[HEADLESS] = ""
        if current is None:
            body: Obj = {"metadata": {"name": name, "namespace": ns, "labels": labels,
                                      "annotations": {TRIGGER: timefmt.rfc3339(timefmt.now())}}}
            if subsets:
                body["subsets"] = subsets
            # AlreadyExists: our cache lags behind our own creation. Raised, so the worker retries after a
            # back-off (the key's failures count up) rather than asking again at once.
            self.client.create(self.kinds.endpoints, ns, body)
            return
        if (current.get("subsets") or []) == subsets and (podutil.meta(current).get("labels") or {}) == labels:
            return
        new = copy.deepcopy(current)
        new["subsets"] = subsets
        new["metadata"]["labels"] = labels
        new["metadata"].setdefault("annotations", {})[TRIGGER] = timefmt.rfc3339(timefmt.now())
        self.client.update(self.kinds.endpoints, new)
