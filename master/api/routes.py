"""URL → (resource, namespace, name, subresource, verb), then authorise and call the handler.

One blueprint per API group (`/api` for core, `/apis/GROUP` for the others);
each parses the rest of the path itself, which keeps `namespaces/NAME/status`
and `namespaces/NS/pods` apart the way the real API server does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, request

from core import errors
from master.api import body as bodies
from master.api import discovery, podstreams, proxy, scale, watch
from master.api.auth import Attributes, authorize
from master.api.render import json_response, renderer
from master.api.streaming import STREAM_HEADER
from master.registry import fieldmanager
from master.registry.context import ApiContext, Identity
from master.registry.listing import ListOptions, parse_list_options
from master.registry.resource import ResourceType
from master.registry.verbs import FieldCheck, Handlers

Obj = dict[str, Any]
_TRUE = ("1", "true", "True")


@dataclass(frozen=True)
class Target:
    resource: ResourceType
    namespace: str
    name: str
    subresource: str
    legacy_watch: bool


def parse_path(ctx: ApiContext, group: str, version: str, rest: str) -> Target:
    parts = [p for p in rest.split("/") if p]
    legacy_watch = False
    if parts and parts[0] == "watch":
        legacy_watch, parts = True, parts[1:]
    catalog = ctx.catalog

    def lookup(plural: str) -> ResourceType:
        rt = catalog.lookup(group, version, plural)
        if rt is None:
            raise errors.NotFound(message="the server could not find the requested resource")
        return rt

    if not parts:
        raise errors.NotFound(message="the server could not find the requested resource")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) >= 3 and not group:
        candidate = catalog.lookup(group, version, parts[2])
        if candidate is not None and candidate.namespaced:
            namespace, parts = parts[1], parts[2:]
    elif parts[0] == "namespaces" and len(parts) >= 3 and group:
        namespace, parts = parts[1], parts[2:]
    rt = lookup(parts[0])
    if namespace and not rt.namespaced:
        raise errors.NotFound(message="the server could not find the requested resource")
    name = parts[1] if len(parts) > 1 else ""
    sub = parts[2] if len(parts) > 2 else ""
    if sub == "proxy" and sub in rt.subresources:  # pods/NAME/proxy/ANY/PATH: the rest is the target's path
        return Target(rt, namespace, name, sub, legacy_watch)
    if len(parts) > 3 or (sub and sub not in rt.subresources):
        raise errors.NotFound(message="the server could not find the requested resource")
    return Target(rt, namespace, name, sub, legacy_watch)


def group_blueprint(ctx: ApiContext, handlers: Handlers, core: bool, stopping: threading.Event) -> Blueprint:
    """The blueprint that serves the core group (`/api`) or every named group (`/apis/GROUP`): the named
    groups are read from the URL, so groups that CustomResourceDefinitions add are served as they appear."""
    if core:
        bp = Blueprint("group_core", __name__, url_prefix="/api")
    else:
        bp = Blueprint("groups", __name__, url_prefix="/apis/<group>")
    # HEAD and OPTIONS reach the views (proxy subresources pass them on; elsewhere they are GET and 405).
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    @bp.get("")
    @bp.get("/")
    def group_root(group: str = "") -> Response:
        if not group:
            host = request.host or f"127.0.0.1:{ctx.settings.port}"
            return json_response(discovery.api_versions(host))
        doc = discovery.api_group(ctx.catalog, group)
        if doc is None:
            raise errors.NotFound(message="the server could not find the requested resource")
        return json_response(doc)

    @bp.get("/<version>")
    @bp.get("/<version>/")
    def version_root(version: str, group: str = "") -> Response:
        doc = discovery.resource_list(ctx.catalog, group, version)
        if doc is None:
            raise errors.NotFound(message="the server could not find the requested resource")
        return json_response(doc)

    @bp.route("/<version>/<path:rest>", methods=methods, provide_automatic_options=False)
    def resource(version: str, rest: str, group: str = "") -> Response:
        target = parse_path(ctx, group, version, rest)
        return dispatch(ctx, handlers, target, stopping)

    return bp


def _verb(target: Target) -> str:
    method = request.method
    collection = not target.name
    if target.subresource in podstreams.STREAMING:
        return "create"  # whatever the method: a WebSocket handshake is a GET, and it runs commands all the same
    if target.subresource == "proxy":
        return _PROXY_VERB.get(method, "get")
    if method == "HEAD":
        method = "GET"
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise errors.MethodNotAllowed(message="the server does not allow this method on the requested resource")
    if method == "GET":
        if collection:
            return "watch" if target.legacy_watch or request.args.get("watch") in _TRUE else "list"
        return "watch" if target.legacy_watch else "get"
    if method == "POST":
        if target.subresource in ("binding", "eviction", "token"):
            return "create"
        if not collection:
            raise errors.MethodNotAllowed(message=f"the server does not allow this method on the requested "
                                                  f"resource ({method} on a named {target.resource.plural})")
        return "create"
    if collection and method in ("PUT", "PATCH"):
        raise errors.MethodNotAllowed(message="the server does not allow this method on the requested resource")
    return {"PUT": "update", "PATCH": "patch", "DELETE": "deletecollection" if collection else "delete"}[method]


_PROXY_VERB = {"GET": "get", "HEAD": "get", "OPTIONS": "get", "POST": "create", "PUT": "update",
               "PATCH": "patch", "DELETE": "delete"}


def dispatch(ctx: ApiContext, handlers: Handlers, target: Target, stopping: threading.Event) -> Response:
    rt, ns, name, sub = target.resource, target.namespace, target.name, target.subresource
    verb = _verb(target)
    identity: Identity = g.identity
    opts = ListOptions()
    if verb in ("list", "watch", "deletecollection"):
        opts = parse_list_options(rt, request.args)
    node_sel = None
    if opts.field_selector is not None:
        node_sel = opts.field_selector.exact("spec.nodeName")
    created: Obj | None = None
    if verb == "create" and not sub:
        # Authorisation of a create looks at the name in the body (a node may create only its own Lease).
        created = bodies.decode_object(bodies.read(request, ctx.settings.max_body_bytes), bodies.media_type(request))
        meta = created.get("metadata")
        name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
    authorize(ctx, identity, Attributes(verb, rt, ns, name, sub, node_sel))
    if rt.namespaced and not ns and verb not in ("list", "watch", "deletecollection"):
        raise errors.NotFound(message="the server could not find the requested resource")
    dry_run = request.args.get("dryRun") == "All"
    render = renderer(rt, request.headers.get("Accept", ""), request.args.get("includeObject", ""))
    limit = ctx.settings.max_body_bytes

    if sub in podstreams.STREAMING and rt.kind == "Pod":
        return podstreams.handle(ctx, handlers, rt, ns, name, sub, request.environ, stopping)
    if sub == "proxy":
        return proxy.handle(ctx, handlers, rt, ns, name, request.environ, stopping)
    if sub == "log":
        from master.api import logs
        return logs.proxy(ctx, handlers, rt, ns, name, request.args)
    if sub == "scale":
        return scale.handle(handlers, rt, ns, name, verb, request, limit, dry_run)
    if sub == "binding":
        from master.registry import binding
        body = bodies.decode_object(bodies.read(request, limit), bodies.media_type(request))
        return json_response(binding.bind(handlers, rt, ns, name, body), 201)
    if sub == "token" and rt.kind == "ServiceAccount":
        from master.api import tokenrequest
        return json_response(tokenrequest.handle(ctx, handlers, rt, ns, name, request, identity, dry_run), 201)
    if sub == "eviction":
        options = {"gracePeriodSeconds": None}
        return json_response(handlers.delete(rt, ns, name, options, dry_run), 201)

    if verb == "get":
        return json_response(render.one(handlers.get(rt, ns, name)))
    if verb == "list":
        return json_response(render.many(handlers.list(rt, ns, opts)))
    if verb == "watch":
        timeout = _watch_timeout(request.args.get("timeoutSeconds"))
        bookmarks = request.args.get("allowWatchBookmarks") in _TRUE
        gen = watch.stream(ctx.store, rt, ns, opts, request.args.get("resourceVersion", ""), timeout,
                           bookmarks, render.one, stopping, watch.SHARED_LINES if render.table is None else None)
        return Response(gen, status=200, mimetype="application/json",
                        headers={"Cache-Control": "no-cache, private", STREAM_HEADER: "1"})
    fields = FieldCheck.parse(request.args.get("fieldValidation"))
    manager = field_manager()
    if verb == "create" and created is not None:
        made = handlers.create(rt, ns, created, dry_run, fields, identity, manager)
        return _warned(json_response(render.one(made), 201), fields)
    if verb == "update":
        body = bodies.decode_object(bodies.read(request, limit), bodies.media_type(request))
        updated = handlers.update(rt, ns, name, body, sub, dry_run, fields, identity, manager)
        return _warned(json_response(render.one(updated)), fields)
    if verb == "patch":
        mtype = bodies.media_type(request)
        kind = bodies.PATCH_TYPES.get(mtype)
        if kind == "strategic" and rt.custom is not None:  # as Kubernetes: no patch strategies in a CRD schema
            kind = None
        if kind is None:
            accepted = [m for m, k in bodies.PATCH_TYPES.items() if k != "strategic" or rt.custom is None]
            raise errors.UnsupportedMediaType(
                message=f'the body of the request was in an unknown format - accepted media types include: '
                        f'{", ".join(accepted)}')
        force = request.args.get("force")
        if kind != "apply" and force is not None:
            raise errors.Invalid(message='PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                                         "specified for non-apply patch", kind="PatchOptions", group="meta.k8s.io",
                                 causes=[errors.Cause("force", "Forbidden: may not be specified for non-apply patch",
                                                      "FieldValueForbidden")])
        if kind == "apply":
            applier = request.args.get("fieldManager", "")
            fieldmanager.require_manager(applier)  # before the body: Kubernetes checks PatchOptions first
            patch_body = bodies.decode(bodies.read(request, limit), mtype)
            def may_create() -> None:
                authorize(ctx, identity, Attributes("create", rt, ns, name, sub))

            applied, was_created = handlers.apply(rt, ns, name, patch_body, sub, dry_run, fields, identity, applier,
                                                  force == "true", may_create)
            return _warned(json_response(render.one(applied), 201 if was_created else 200), fields)
        patch_body = bodies.decode(bodies.read(request, limit), mtype)
        patched = handlers.patch(rt, ns, name, kind, patch_body, sub, dry_run, fields, identity, manager)
        return _warned(json_response(render.one(patched)), fields)
    if verb == "delete":
        options = _delete_options(limit)
        result = handlers.delete(rt, ns, name, options, dry_run)
        return json_response(result)  # typed (and converted) by the handler
    if verb == "deletecollection":
        options = _delete_options(limit)
        return json_response(handlers.delete_collection(rt, ns, opts, options, dry_run))
    raise errors.MethodNotAllowed(message="the server does not allow this method on the requested resource")


def field_manager() -> str:
    """The request's field manager: `?fieldManager=`, else Kubernetes' default from the User-Agent."""
    return request.args.get("fieldManager") or \
        fieldmanager.manager_from_user_agent(request.headers.get("User-Agent", "")) or "unknown"


def _warned(resp: Response, fields: FieldCheck) -> Response:
    for warning in fields.warnings:
        resp.headers.add("Warning", warning)
    return resp


def _delete_options(limit: int) -> Obj:
    data = bodies.read(request, limit)
    options: Obj = {}
    if data.strip():
        parsed = bodies.decode_object(data, bodies.media_type(request) or "application/json")
        options.update(parsed)
    for key in ("gracePeriodSeconds", "propagationPolicy", "orphanDependents"):
        if key in request.args:
            value: Any = request.args[key]
            if key == "orphanDependents":
                value = value in _TRUE
            options[key] = value
    return options


def _watch_timeout(text: str | None) -> float:
    """A watch's `timeoutSeconds`: an integer; absent or 0 means the server's default (30 minutes), and a
    negative one ends the watch at once, as on Kubernetes."""
    if text is None or text == "":
        return 1800.0
    try:
        seconds = int(text)
    except ValueError:
        raise errors.BadRequest(message=f'invalid timeoutSeconds "{text}": must be an integer') from None
    if seconds < 0:
        return 0.0
    return float(seconds or 1800)
