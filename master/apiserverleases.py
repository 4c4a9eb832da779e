"""Every live master in the `kubernetes` Endpoints: what agents (and pods) use to find a master.

As kube-apiserver's lease endpoint reconciler: each master keeps a Lease of its
own, `kube-system/pikube-apiserver-<address>-<port>` (label
`pikube.io/apiserver`), renewed every 10 s for 45 s, and sets
`default/kubernetes` to the addresses of the masters whose leases are live
(grouped by port, sorted, so every master computes the same and only a change
is written), and the Endpoints of `kube-system/pikube-api` alike when the
masters have a floating address (`--api-address`). A master that stops deletes its lease and takes itself out at
once; one that dies drops out when its lease runs out. With SQLite (one
master) this keeps the Endpoints on that master's address.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from core import errors
from core.kube import timefmt
from core.wellknown import API_SERVICE, APISERVER_LEASE_LABEL, BOARD_NODE_ANNOTATION
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

log = logging.getLogger(__name__)
Obj = dict[str, Any]
LABEL = APISERVER_LEASE_LABEL
NAMESPACE = "kube-system"
RENEW_SECONDS, LEASE_SECONDS = 10.0, 45


def lease_name(address: str, port: int) -> str:
    return f"pikube-apiserver-{address.replace(':', '-')}-{port}"


def endpoint_subsets(live: list[tuple[str, int]]) -> list[Obj]:
    """Endpoints subsets for (address, port) pairs: one subset per port, addresses sorted."""
    by_port: dict[int, list[str]] = {}
    for address, port in live:
        by_port.setdefault(port, []).append(address)
    return [{"addresses": [{"ip": a} for a in sorted(set(addrs))],
             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
            for port, addrs in sorted(by_port.items())]


class ApiserverLeases:
    def __init__(self, handlers: Handlers, lease_rt: ResourceType, endpoints_rt: ResourceType, address: str,
                 port: int, stopping: threading.Event, api_service: bool = False, board_node: str = "") -> None:
        """`api_service`: also keep the Endpoints of kube-system/pikube-api (the floating address, `--api-address`);
        `board_node`: the Node of the board this master runs on, named on its Lease (noderoles.py reads it)."""
        self.h = handlers
        self.board_node = board_node
        self.api_service = api_service
        self.lease_rt, self.ep_rt = lease_rt, endpoints_rt
        self.address, self.port = address, port
        self.name = lease_name(address, port)
        self.stopping = stopping

    def renew(self) -> None:
        notes = {"pikube.io/address": f"{self.address}:{self.port}",
                 **({BOARD_NODE_ANNOTATION: self.board_node} if self.board_node else {})}
        body: Obj = {"metadata": {"name": self.name, "namespace": NAMESPACE, "labels": {LABEL: "true"},
                                  "annotations": notes},
                     "spec": {"holderIdentity": f"{self.address}:{self.port}", "leaseDurationSeconds": LEASE_SECONDS,
                              "renewTime": timefmt.micro()}}
        try:
            self.h.create(self.lease_rt, NAMESPACE, body)
        except errors.AlreadyExists:
            self.h.patch(self.lease_rt, NAMESPACE, self.name, "merge",
                         {"metadata": {"annotations": notes}, "spec": body["spec"]})

    def live(self, without_self: bool = False) -> list[tuple[str, int]]:
        from core.kube.selectors import LabelSelector
        from master.registry.listing import ListOptions

        leases = self.h.list(self.lease_rt, NAMESPACE, ListOptions(label_selector=LabelSelector.parse(LABEL)))
        now = timefmt.now()
        found = []
        for lease in leases["items"]:
            spec = lease.get("spec") or {}
            renewed = timefmt.parse(spec.get("renewTime"))
            held = str(((lease.get("metadata") or {}).get("annotations") or {}).get("pikube.io/address") or "")
            address, _, port = held.rpartition(":")
            if renewed is None or not address or not port.isdigit():
                continue
            if (now - renewed).total_seconds() > float(spec.get("leaseDurationSeconds") or LEASE_SECONDS):
                continue
            if without_self and (address, int(port)) == (self.address, self.port):
                continue
            found.append((address, int(port)))
        return found

    def reconcile(self, without_self: bool = False) -> None:
        subsets = endpoint_subsets(self.live(without_self))
        if not subsets:
            return  # never empty the Endpoints: clients keep what they knew
        self._write("default", "kubernetes", subsets)
        if self.api_service:  # the floating address forwards to the same masters
            self._write(*API_SERVICE, subsets)

    def _write(self, namespace: str, name: str, subsets: list[Obj]) -> None:
        try:
            current = self.h.get(self.ep_rt, namespace, name)
        except errors.NotFound:
            self.h.create(self.ep_rt, namespace, {"metadata": {"name": name, "labels": {
                "endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": subsets})
            return
        if current.get("subsets") != subsets:
            self.h.patch(self.ep_rt, namespace, name, "merge", {"subsets": subsets})

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.renew()
                self.reconcile()
            except errors.ApiError as exc:  # the store is unreachable: try again next round
                log.info("apiserver lease: %s", exc.message)
            self.stopping.wait(RENEW_SECONDS)
        try:  # leaving: out of the Endpoints at once
            self.h.delete(self.lease_rt, NAMESPACE, self.name, {})
            self.reconcile(without_self=True)
        except errors.ApiError:
            pass
