"""The `scale` subresource (autoscaling/v1 Scale), which `kubectl scale` reads and writes."""

from __future__ import annotations

from typing import Any

from flask import Request, Response

from core import errors
from core.kube.jsonpatch import json_patch
from core.kube.patch import json_merge_patch
from core.kube.selectors import LabelSelector
from master.api import body as bodies
from master.api.render import json_response
from master.registry import fieldmanager
from master.registry.customresources import CustomKind, ScalePaths
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

Obj = dict[str, Any]


def to_scale(obj: Obj) -> Obj:
    m = obj.get("metadata", {})
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector") or {}
    try:
        if obj.get("kind") == "ReplicationController":  # an equality-based selector: a label map
            selector_text = str(LabelSelector.from_set(selector)) if selector else ""
        else:
            selector_text = str(LabelSelector.from_dict(selector)) if selector else ""
    except ValueError:
        selector_text = ""
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in m},
        "spec": {"replicas": int(spec.get("replicas") or 0)},
        "status": {"replicas": int(status.get("replicas") or 0), "selector": selector_text},
    }


def _at(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.strip(".").split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def custom_scale(obj: Obj, paths: ScalePaths) -> Obj:
    """The Scale of a custom resource, read where its CRD's scale subresource says."""
    m = obj.get("metadata", {})
    replicas, status_replicas = _at(obj, paths.spec_replicas), _at(obj, paths.status_replicas)
    status: Obj = {"replicas": status_replicas if isinstance(status_replicas, int) else 0}
    if paths.label_selector:
        selector = _at(obj, paths.label_selector)
        if isinstance(selector, str) and selector:
            status["selector"] = selector
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in m},
        "spec": {"replicas": replicas if isinstance(replicas, int) else 0},
        "status": status,
    }


def _nested(path: str, value: Any) -> Obj:
    out: Obj = {}
    cur = out
    parts = path.strip(".").split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    return out


def _replicas(scale: Any) -> int:
    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or replicas < 0:
        raise errors.Invalid(message=f"Scale is invalid: spec.replicas: Invalid value: {replicas}: must be "
                                     "greater than or equal to 0",
                             causes=[errors.Cause("spec.replicas", f"Invalid value: {replicas}: must be "
                                                  "greater than or equal to 0")])
    return replicas


def handle(handlers: Handlers, rt: ResourceType, ns: str, name: str, verb: str, request: Request,
           limit: int, dry_run: bool) -> Response:
    current = handlers.get(rt, ns, name)
    paths = rt.custom.scale if isinstance(rt.custom, CustomKind) else None

    def as_scale(obj: Obj) -> Obj:
        return custom_scale(obj, paths) if paths is not None else to_scale(obj)

    if verb == "get":
        return json_response(as_scale(current))
    mtype = bodies.media_type(request)
    if verb == "patch" and bodies.PATCH_TYPES.get(mtype) == "apply":
        return _apply(handlers, rt, ns, name, request, limit, dry_run)
    data = bodies.decode(bodies.read(request, limit), mtype)
    if verb == "update":
        scale = data
        expect = (scale.get("metadata") or {}).get("resourceVersion") if isinstance(scale, dict) else None
    elif verb == "patch":
        kind = bodies.PATCH_TYPES.get(mtype)
        if kind == "json":
            scale = json_patch(as_scale(current), data)
        elif kind in ("merge", "strategic") and isinstance(data, dict):
            scale = json_merge_patch(as_scale(current), data)
        else:
            raise errors.UnsupportedMediaType(message=f'unsupported patch type "{mtype}" for scale')
        expect = None
    else:
        raise errors.MethodNotAllowed(message="the server does not allow this method on the requested resource")
    replicas = _replicas(scale)
    patch_body: Obj = _nested(paths.spec_replicas, replicas) if paths is not None else {"spec": {"replicas": replicas}}
    if expect:
        patch_body["metadata"] = {"resourceVersion": expect}
    manager = request.args.get("fieldManager") or \
        fieldmanager.manager_from_user_agent(request.headers.get("User-Agent", "")) or "unknown"
    updated = handlers.patch(rt, ns, name, "merge", patch_body, "scale", dry_run, manager=manager)
    return json_response(as_scale(updated))


def _apply(handlers: Handlers, rt: ResourceType, ns: str, name: str, request: Request, limit: int,
           dry_run: bool) -> Response:
    """Server-side apply of an autoscaling/v1 Scale: its replicas applied to the parent, owned by the
    manager with `subresource: scale` (a missing parent is 404: apply creates through no subresource)."""
    manager = request.args.get("fieldManager", "")
    fieldmanager.require_manager(manager)
    data = bodies.decode(bodies.read(request, limit), bodies.media_type(request))
    if not isinstance(data, dict) or data.get("apiVersion") != "autoscaling/v1" or data.get("kind") != "Scale":
        shown = fieldmanager.gvk_string(data) if isinstance(data, dict) else "/, Kind="
        raise errors.BadRequest(message=f"invalid object type: {shown}")
    config: Obj = {"apiVersion": rt.api_version, "kind": rt.kind, "metadata": {"name": name}}
    spec = data.get("spec")
    paths = rt.custom.scale if isinstance(rt.custom, CustomKind) else None
    if isinstance(spec, dict) and "replicas" in spec:
        replicas = _replicas(data)
        config.update(_nested(paths.spec_replicas, replicas) if paths is not None else {"spec": {"replicas": replicas}})
    applied, _ = handlers.apply(rt, ns, name, config, "scale", dry_run, None, None, manager,
                                request.args.get("force") == "true")
    return json_response(custom_scale(applied, paths) if paths is not None else to_scale(applied))
