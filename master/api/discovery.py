"""Discovery documents: /version, /api, /apis and the per-group-version resource lists.

kubectl builds its REST mapping (and `api-resources`, short names, `get all`)
from these. Aggregated discovery is not offered: kubectl falls back to these
per-group documents when the server answers plain JSON.
"""

from __future__ import annotations

import platform
from typing import Any

from core import __version__
from master.registry.catalog import Catalog
from master.registry.resource import ResourceType

Obj = dict[str, Any]

# The Kubernetes API level pikube's behaviour follows.
KUBE_MAJOR, KUBE_MINOR = "1", "29"

_SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "binding": ["create"],
    "eviction": ["create"],
    "token": ["create"],
    "log": ["get"],
    "finalize": ["update"],
    "proxy": ["create", "delete", "get", "patch", "update"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
}
_SUBRESOURCE_KIND = {"scale": ("autoscaling", "v1", "Scale"), "binding": ("", "v1", "Binding"),
                     "eviction": ("policy", "v1", "Eviction"),
                     "token": ("authentication.k8s.io", "v1", "TokenRequest")}
# The options kinds kube-apiserver lists for the connect subresources.
_CONNECT_KIND = {("pods", "exec"): "PodExecOptions", ("pods", "attach"): "PodAttachOptions",
                 ("pods", "portforward"): "PodPortForwardOptions", ("pods", "proxy"): "PodProxyOptions",
                 ("services", "proxy"): "ServiceProxyOptions", ("nodes", "proxy"): "NodeProxyOptions"}


def version_info() -> Obj:
    return {
        "major": KUBE_MAJOR, "minor": KUBE_MINOR,
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-pikube.{__version__}",
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
        "platform": f"linux/{_arch()}",
    }


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def api_versions(server_address: str) -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list(catalog: Catalog) -> Obj:
    groups = []
    for group, versions in catalog.groups().items():
        if not group:
            continue
        groups.append(_group(group, versions))
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _group(group: str, versions: list[str]) -> Obj:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group(catalog: Catalog, group: str) -> Obj | None:
    versions = catalog.groups().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def resource_list(catalog: Catalog, group: str, version: str) -> Obj | None:
    resources = catalog.in_group_version(group, version)
    if not resources:
        return None
    entries: list[Obj] = []
    for rt in resources:
        entries.append(_entry(rt))
        for sub in rt.subresources:
            entries.append(_sub_entry(rt, sub))
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


def _entry(rt: ResourceType) -> Obj:
    entry: Obj = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                  "kind": rt.kind, "verbs": list(rt.verbs)}
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def _sub_entry(rt: ResourceType, sub: str) -> Obj:
    entry: Obj = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                  "kind": rt.kind, "verbs": _SUBRESOURCE_VERBS.get(sub, ["get"])}
    if sub in _SUBRESOURCE_KIND:
        group, version, kind = _SUBRESOURCE_KIND[sub]
        entry.update({"group": group, "version": version, "kind": kind})
    if sub == "log":
        entry["kind"] = "Pod"
    if (rt.plural, sub) in _CONNECT_KIND:
        entry["kind"] = _CONNECT_KIND[(rt.plural, sub)]
    return entry
