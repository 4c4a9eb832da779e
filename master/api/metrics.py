"""`metrics.k8s.io/v1beta1` (what `kubectl top` and autoscalers read), and the agents' usage reports it is made of.

The resource metrics API is served by the master itself from the boards' reports
kept in memory (`master/usage.py`), not by a metrics-server pod: the objects are
metrics-server's — `NodeMetrics` and `PodMetrics` with `timestamp`, `window` and
usage as quantities (CPU in nanocores, `n`; memory in `Ki`) — listed and got as
metrics-server serves them, with `labelSelector` matched against the Node's or
Pod's own labels. A pod is listed only when its board's last report had a
complete sample of it, and only while that pod exists with the same uid; a board
whose report is older than two minutes is left out, never shown as idle.

Boards send reports with `PUT /pikube/v1/nodes/NAME/metrics`, each only its own
(the admin may too); reading the metrics API is RBAC's decision (`view`, `edit`
and `admin` hold it, through `system:aggregated-metrics-reader`, as with
metrics-server's manifests); no node holds it.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, g, request

from core import errors
from core.kube.selectors import LabelSelector
from master.api import body
from master.api.auth import allowed
from master.api.render import json_response
from master.registry.context import ApiContext, Identity
from master.registry.rbacindex import Request
from master.usage import NodeUsage, PodUsage, ReportError

Obj = dict[str, Any]
GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
REPORT_LIMIT = 512 * 1024  # a board with 110 pods of a few containers sends ~20 kB


def api_group() -> Obj:
    gv = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def resource_list() -> Obj:
    verbs = ["get", "list"]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": verbs},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": verbs}]}


def cpu_quantity(nanocores: int) -> str:
    return f"{nanocores}n"


def memory_quantity(size: int) -> str:
    return f"{size // 1024}Ki"


def _window(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def node_metrics(usage: NodeUsage, node: Obj) -> Obj:
    meta = node.get("metadata") or {}
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": usage.node, "creationTimestamp": usage.timestamp, "labels": meta.get("labels") or {}},
            "timestamp": usage.timestamp, "window": _window(usage.window),
            "usage": {"cpu": cpu_quantity(usage.cpu), "memory": memory_quantity(usage.memory)}}


def pod_metrics(usage: NodeUsage, pod_usage: PodUsage, pod: Obj) -> Obj:
    meta = pod.get("metadata") or {}
    return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": pod_usage.name, "namespace": pod_usage.namespace,
                         "creationTimestamp": usage.timestamp, "labels": meta.get("labels") or {}},
            "timestamp": usage.timestamp, "window": _window(usage.window),
            "containers": [{"name": c.name, "usage": {"cpu": cpu_quantity(c.cpu), "memory": memory_quantity(c.memory)}}
                           for c in pod_usage.containers]}


def _listed(kind: str) -> Obj:
    return {"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": []}


class MetricsApi:
    """The metrics API's answers, from the usage store and the store's Nodes and Pods."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _objects(self, plural: str, namespace: str = "") -> dict[tuple[str, str], Obj]:
        rt = self.ctx.catalog.by_kind("", "Node" if plural == "nodes" else "Pod")
        if rt is None:
            return {}
        items, _ = self.ctx.store.list(rt.prefix(namespace))
        return {(str(o["metadata"].get("namespace") or ""), str(o["metadata"]["name"])): o for o in items}

    def nodes(self, selector: LabelSelector, name: str = "") -> list[Obj]:
        nodes = self._objects("nodes")
        found = []
        for node_name, usage in sorted(self.ctx.usage.nodes().items()):
            node = nodes.get(("", node_name))
            if node is None or (name and node_name != name):
                continue
            if selector.matches((node.get("metadata") or {}).get("labels") or {}):
                found.append(node_metrics(usage, node))
        return found

    def pods(self, selector: LabelSelector, namespace: str = "", name: str = "") -> list[Obj]:
        if name:
            entry = self.ctx.usage.pod(namespace, name)
            entries = [entry] if entry is not None else []
        else:
            entries = [e for e in self.ctx.usage.pods() if not namespace or e[1].namespace == namespace]
        pods = self._objects("pods", namespace)
        found = []
        for usage, pod_usage in sorted(entries, key=lambda e: (e[1].namespace, e[1].name)):
            pod = pods.get((pod_usage.namespace, pod_usage.name))
            if pod is None or (pod_usage.uid and pod["metadata"].get("uid") != pod_usage.uid):
                continue  # gone, or a new pod of the same name that has no sample yet
            if selector.matches((pod.get("metadata") or {}).get("labels") or {}):
                found.append(pod_metrics(usage, pod_usage, pod))
        return found


def _forbidden(identity: Identity, verb: str, plural: str, namespace: str) -> errors.Forbidden:
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return errors.Forbidden(message=f'{plural}.{GROUP} is forbidden: User "{identity.user}" cannot {verb} resource '
                                    f'"{plural}" in API group "{GROUP}" {scope}')


def blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("metrics", __name__)
    api = MetricsApi(ctx)

    @bp.put("/pikube/v1/nodes/<name>/metrics")
    def report(name: str) -> Response:
        identity: Identity = g.identity
        if not identity.is_admin and identity.node_name != name:
            raise errors.Forbidden(message=f'User "{identity.user}" may not report the usage of node "{name}": '
                                           "a board reports only its own")
        data = body.read(request, REPORT_LIMIT)
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise errors.BadRequest(message="the usage report is not JSON") from None
        try:
            ctx.usage.put(name, doc)
        except ReportError as exc:
            raise errors.BadRequest(message=f"usage report of node {name}: {exc}") from None
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 200})

    @bp.get(f"/apis/{GROUP}")
    @bp.get(f"/apis/{GROUP}/")
    def group() -> Response:
        return json_response({"kind": "APIGroup", "apiVersion": "v1", **api_group()})

    @bp.get(f"/apis/{GROUP_VERSION}")
    @bp.get(f"/apis/{GROUP_VERSION}/")
    def resources() -> Response:
        return json_response(resource_list())

    def selector() -> LabelSelector:
        return LabelSelector.parse(request.args.get("labelSelector") or "")

    def may(verb: str, plural: str, namespace: str = "") -> None:
        identity: Identity = g.identity
        if not allowed(ctx, identity, Request(verb, GROUP, plural, namespace=namespace)):
            raise _forbidden(identity, verb, plural, namespace)

    @bp.get(f"/apis/{GROUP_VERSION}/nodes")
    def list_nodes() -> Response:
        may("list", "nodes")
        return json_response({**_listed("NodeMetricsList"), "items": api.nodes(selector())})

    @bp.get(f"/apis/{GROUP_VERSION}/nodes/<name>")
    def get_node(name: str) -> Response:
        may("get", "nodes")
        found = api.nodes(LabelSelector(), name)
        if not found:
            raise errors.NotFound(message=f'nodemetrics.{GROUP} "{name}" not found', name=name, kind="nodes",
                                  group=GROUP)
        return json_response(found[0])

    @bp.get(f"/apis/{GROUP_VERSION}/pods")
    @bp.get(f"/apis/{GROUP_VERSION}/namespaces/<namespace>/pods")
    def list_pods(namespace: str = "") -> Response:
        may("list", "pods", namespace)
        return json_response({**_listed("PodMetricsList"), "items": api.pods(selector(), namespace)})

    @bp.get(f"/apis/{GROUP_VERSION}/namespaces/<namespace>/pods/<name>")
    def get_pod(namespace: str, name: str) -> Response:
        may("get", "pods", namespace)
        found = api.pods(LabelSelector(), namespace, name)
        if not found:
            raise errors.NotFound(message=f'podmetrics.{GROUP} "{name}" not found', name=name, kind="pods",
                                  group=GROUP)
        return json_response(found[0])

    return bp
