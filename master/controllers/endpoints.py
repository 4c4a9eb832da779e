"""The Endpoints controller: for each Service with a selector, the addresses of the pods behind it.

Every pod the selector matches that has an IP and is not being deleted is an
address: under `addresses` when Ready, under `notReadyAddresses` otherwise
(or always `addresses` with `publishNotReadyAddresses`). A named `targetPort`
is resolved per pod from its container ports, so pods of different versions
may expose it on different numbers; pods are grouped into subsets by their
resolved ports, as Kubernetes packs them. Endpoints of a Service that is gone
are deleted; Services without a selector (such as `kubernetes`) are left alone.
"""

from __future__ import annotations

import copy
from typing import Any

from core import errors
from core.kube import timefmt
from core.kube.selectors import LabelSelector
from master.client import Env, Informer, split_key
from master.controllers import podutil
from master.controllers.base import Controller
from master.controllers.keys import by_namespace

Obj = dict[str, Any]
TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time"


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


def subsets_for(svc: Obj, pods: list[Obj]) -> list[Obj]:
    spec = svc.get("spec") or {}
    publish_all = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or podutil.meta(pod).get("deletionTimestamp") or podutil.is_terminal(pod):
            continue
        ports = []
        for sp in spec.get("ports") or []:
            number = resolve_port(sp, pod)
            if number is not None:
                ports.append((str(sp.get("name") or ""), number, str(sp.get("protocol") or "TCP")))
        if not ports:
            continue
        pm = podutil.meta(pod)
        address: Obj = {"ip": ip, "targetRef": {"kind": "Pod", "namespace": pm.get("namespace", ""),
                                                "name": pm.get("name", ""), "uid": pm.get("uid", "")}}
        if (pod.get("spec") or {}).get("nodeName"):
            address["nodeName"] = pod["spec"]["nodeName"]
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish_all or podutil.is_ready(pod) else not_ready).append(address)
    subsets = []
    for ports_key, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {"ports": [{"name": n, "port": p, "protocol": pr} if n else {"port": p, "protocol": pr}
                                 for n, p, pr in ports_key]}
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
        self.endpoints.add_handler(lambda old, new: self.enqueue(new or old))
        self.pods.add_handler(self._pod_changed)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        for pod in {id(p): p for p in (old, new) if p is not None}.values():
            labels = podutil.meta(pod).get("labels") or {}
            for svc in self.services.by_index("namespace", podutil.meta(pod).get("namespace", "")):
                selector = (svc.get("spec") or {}).get("selector")
                if selector and LabelSelector.from_set(selector).matches(labels):
                    self.enqueue(svc)

    def sync(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self.services.get(ns, name)
        current = self.endpoints.get(ns, name)
        if svc is None:
            if current is not None:
                self.client.delete(self.kinds.endpoints, ns, name, uid=current["metadata"]["uid"])
            return
        selector = (svc.get("spec") or {}).get("selector")
        if not selector:
            return
        sel = LabelSelector.from_set(selector)
        pods = [p for p in self.pods.by_index("namespace", ns) if sel.matches(podutil.meta(p).get("labels"))]
        subsets = subsets_for(svc, pods)
        labels = dict(podutil.meta(svc).get("labels") or {})
        if current is None:
            body: Obj = {"metadata": {"name": name, "namespace": ns, "labels": labels,
                                      "annotations": {TRIGGER: timefmt.rfc3339(timefmt.now())}}}
            if subsets:
                body["subsets"] = subsets
            try:
                self.client.create(self.kinds.endpoints, ns, body)
            except errors.AlreadyExists:
                self.queue.add(key)  # our cache lags: look again
            return
        if (current.get("subsets") or []) == subsets and (podutil.meta(current).get("labels") or {}) == labels:
            return
        new = copy.deepcopy(current)
        new["subsets"] = subsets
        new["metadata"]["labels"] = labels
        new["metadata"].setdefault("annotations", {})[TRIGGER] = timefmt.rfc3339(timefmt.now())
        self.client.update(self.kinds.endpoints, new)
