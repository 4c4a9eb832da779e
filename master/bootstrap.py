"""Objects every cluster has from its first start: system namespaces and the `kubernetes` service."""

from __future__ import annotations

import contextlib
from typing import Any

from core import errors
from master.registry.context import ApiContext
from master.registry.services import first_service_ip
from master.registry.verbs import Handlers

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def ensure_defaults(ctx: ApiContext) -> None:
    h = Handlers(ctx)
    catalog = ctx.catalog
    ns_rt = catalog.by_kind("", "Namespace")
    sa_rt = catalog.by_kind("", "ServiceAccount")
    svc_rt = catalog.by_kind("", "Service")
    ep_rt = catalog.by_kind("", "Endpoints")
    assert ns_rt and sa_rt and svc_rt and ep_rt
    for ns in SYSTEM_NAMESPACES:
        _create(h.create, ns_rt, "", {"metadata": {"name": ns}})
        _create(h.create, sa_rt, ns, {"metadata": {"name": "default"}})
    port = ctx.settings.port
    _create(h.create, svc_rt, "default", {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": first_service_ip(ctx.settings.service_cidr),
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    })
    subsets = [{"addresses": [{"ip": ctx.settings.advertise_address}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    endpoints = {"metadata": {"name": "kubernetes", "labels": {
        "endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": subsets}
    current = ctx.store.get(ep_rt.key("default", "kubernetes"))
    if current is None:
        _create(h.create, ep_rt, "default", endpoints)
    elif current.get("subsets") != subsets:
        h.patch(ep_rt, "default", "kubernetes", "merge", {"subsets": subsets})


def _create(create: Any, rt: Any, ns: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(errors.AlreadyExists):
        create(rt, ns, body)
