"""Objects every cluster has from its first start: system namespaces, the `kubernetes` and `kube-dns` services.

`kube-dns` has no selector and no Endpoints: every agent answers on its address
itself (docs/network.md, "Cluster DNS"); the Service exists so the address is
reserved and so tools and charts that look for `kube-system/kube-dns` find it.
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

from core import errors, wellknown
from core.wellknown import API_ADDRESS_ANNOTATION, API_SERVICE
from master.registry import apiservices, rbacdefaults, storage
from master.registry.context import ApiContext
from master.registry.services import first_service_ip
from master.registry.verbs import Handlers

LOCAL_PATH_CLASS = "local-path"
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
    _create(h.create, svc_rt, "kube-system", {
        "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "KubeDNS",
                                                    "kubernetes.io/cluster-service": "true"}},
        "spec": {"clusterIP": cluster_dns_ip(ctx.settings.service_cidr, ctx.settings.cluster_dns),
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
    })
    ensure_rbac_defaults(ctx, h)
    ensure_local_apiservices(ctx, h)
    ensure_local_path_class(ctx, h)
    subsets = [{"addresses": [{"ip": ctx.settings.advertise_address}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]
    endpoints = {"metadata": {"name": "kubernetes", "labels": {
        "endpointslice.kubernetes.io/skip-mirror": "true"}}, "subsets": subsets}
    current = ctx.store.get(ep_rt.key("default", "kubernetes"))
    if current is None:  # later, every live master is listed by master/apiserverleases.py
        _create(h.create, ep_rt, "default", endpoints)
    if ctx.settings.api_address:
        ensure_api_service(h, svc_rt, ctx.settings.api_address, port)


def ensure_api_service(h: Handlers, svc_rt: Any, address: str, port: int) -> None:
    """The masters' floating address as a LoadBalancer Service without a selector: servicelb gives it
    `address`, master/apiserverleases.py keeps its Endpoints equal to `default/kubernetes`, and the agents
    announce the address by ARP and forward it to a live master, as they do any pool address."""
    ns, name = API_SERVICE
    spec = {"type": "LoadBalancer", "loadBalancerIP": address, "allocateLoadBalancerNodePorts": False,
            "ports": [{"name": "https", "port": port, "protocol": "TCP", "targetPort": port}]}
    body = {"metadata": {"name": name, "annotations": {API_ADDRESS_ANNOTATION: address},
                         "labels": {"component": "apiserver", "provider": "pikube"}}, "spec": spec}
    try:
        current = h.get(svc_rt, ns, name)
    except errors.NotFound:
        _create(h.create, svc_rt, ns, body)
        return
    if ((current.get("metadata") or {}).get("annotations") or {}).get(API_ADDRESS_ANNOTATION) != address:
        h.patch(svc_rt, ns, name, "merge", {"metadata": {"annotations": {API_ADDRESS_ANNOTATION: address}},
                                            "spec": {"loadBalancerIP": address}})


def ensure_local_path_class(ctx: ApiContext, h: Handlers) -> None:
    """The `local-path` StorageClass, the default one, as k3s ships it: volumes are directories on the board that
    first runs a pod of the claim (master/controllers/volumes/). Made again when missing, like k3s' manifest."""
    rt = ctx.catalog.by_kind("storage.k8s.io", "StorageClass")
    assert rt is not None
    if ctx.store.get(rt.key("", LOCAL_PATH_CLASS)) is None:
        _create(h.create, rt, "", {
            "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {storage.DEFAULT_CLASS_ANNOTATION: "true"}},
            "provisioner": wellknown.LOCAL_PATH_PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"})


def ensure_rbac_defaults(ctx: ApiContext, h: Handlers) -> None:
    """The default cluster roles and bindings: made when missing, and put back (rules, aggregation rule,
    subjects) when changed while their `autoupdate` annotation is "true", as Kubernetes' RBAC bootstrap does."""
    roles = ctx.catalog.by_kind("rbac.authorization.k8s.io", "ClusterRole")
    bindings = ctx.catalog.by_kind("rbac.authorization.k8s.io", "ClusterRoleBinding")
    assert roles and bindings
    for rt, wanted_all, fields in ((roles, rbacdefaults.cluster_roles(), ("rules", "aggregationRule")),
                                   (bindings, rbacdefaults.cluster_role_bindings(), ("roleRef", "subjects"))):
        for wanted in wanted_all:
            name = wanted["metadata"]["name"]
            current = ctx.store.get(rt.key("", name))
            if current is None:
                _create(h.create, rt, "", wanted)
                continue
            annotations = (current.get("metadata") or {}).get("annotations") or {}
            if annotations.get(rbacdefaults.AUTOUPDATE) != "true":
                continue
            # An aggregated role's rules are the aggregation controller's to fill.
            keys = [f for f in fields if not (f == "rules" and wanted.get("aggregationRule"))]
            if any(current.get(f) != wanted.get(f) for f in keys):
                if "roleRef" in keys and current.get("roleRef") != wanted.get("roleRef"):
                    continue  # roleRef cannot change; a binding someone re-pointed is left alone
                h.patch(rt, "", name, "merge", {f: wanted.get(f) for f in keys})


def ensure_local_apiservices(ctx: ApiContext, h: Handlers) -> None:
    """An APIService for every group version the master serves (never removed: a stored one outlives nothing)."""
    rt = ctx.catalog.by_kind(apiservices.GROUP, "APIService")
    assert rt is not None
    served = [(g, v) for g, versions in ctx.catalog.groups().items() for v in versions]
    for group, version in [*served, *apiservices.EXTRA_LOCAL]:
        _create(h.create, rt, "", apiservices.local_apiservice(group, version))


def cluster_dns_ip(service_cidr: str, configured: str = "") -> str:
    """The kube-dns address: `configured`, or the tenth address of the service range (kubeadm's choice)."""
    return configured or str(ipaddress.ip_network(service_cidr)[10])


def _create(create: Any, rt: Any, ns: str, body: dict[str, Any]) -> None:
    with contextlib.suppress(errors.AlreadyExists):
        create(rt, ns, body)
