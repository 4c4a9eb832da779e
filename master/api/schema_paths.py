"""The OpenAPI operations of one resource type: every path and verb the API serves, with its parameters.

Operations are described once, neutrally (`Operation`), and rendered into Swagger 2.0
or OpenAPI 3.0 by `master.api.schema_docs`. Names follow the real API server's
(`listCoreV1NamespacedPod`, `x-kubernetes-action`, an operation-level
`x-kubernetes-group-version-kind`), because kubectl reads them: kubectl ≥ 1.27 looks
for a `fieldValidation` query parameter on the PATCH operation of a kind to decide
that the server validates fields itself (client-go `queryParamVerifierV3`), so every
create/update/patch operation declares it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from master.registry import schemas
from master.registry.resource import ResourceType

Obj = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
WATCH_EVENT = META + "WatchEvent"
JSON = "application/json"
# Server-side apply (application/apply-patch+yaml) is served (docs/api.md) but not documented here yet.
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "query" | "path"
    description: str
    schema: Obj
    required: bool = False


def _q(name: str, description: str, schema: Obj) -> Param:
    return Param(name, "query", description, schema)


_STR: Obj = {"type": "string"}
_INT: Obj = {"type": "integer"}
_BOOL: Obj = {"type": "boolean"}

PRETTY = _q("pretty", "If 'true', then the output is pretty printed.", _STR)
DRY_RUN = _q("dryRun", "When present, indicates that modifications should not be persisted. The only valid "
                       "value is All: all dry run stages are processed.", {"type": "string", "enum": ["All"]})
FIELD_MANAGER = _q("fieldManager", "A name associated with the actor or entity that is making these changes.",
                   _STR)
FIELD_VALIDATION = _q(
    "fieldValidation",
    "How the server handles fields of the request body that its schema does not know: Ignore drops them, "
    "Warn drops them and sends a Warning header for each, Strict fails the request with a BadRequest.",
    {"type": "string", "enum": list(schemas.FIELD_VALIDATION)})
LIST_PARAMS = (
    _q("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", _BOOL),
    _q("continue", "The continue option should be set when retrieving more results from the server: the "
                   "value of metadata.continue of the previous page.", _STR),
    _q("fieldSelector", "A selector to restrict the list of returned objects by their fields. Defaults to "
                        "everything.", _STR),
    _q("labelSelector", "A selector to restrict the list of returned objects by their labels. Defaults to "
                        "everything.", _STR),
    _q("limit", "The maximum number of responses to return for a list call; more results are fetched with "
                "continue.", _INT),
    _q("resourceVersion", "Where a list starts, or from which revision a watch sends changes.", _STR),
    _q("timeoutSeconds", "Timeout for the list/watch call, in seconds.", _INT),
    _q("watch", "Watch for changes to the described resources and return them as a stream of add, update, "
                "and remove notifications.", _BOOL),
)
DELETE_PARAMS = (
    DRY_RUN,
    _q("gracePeriodSeconds", "The duration in seconds before the object should be deleted. Zero means delete "
                             "immediately.", _INT),
    _q("orphanDependents", "Deprecated: use propagationPolicy. Whether dependent objects are orphaned.",
       _BOOL),
    _q("propagationPolicy", "Whether and how garbage collection will be performed: Orphan, Background or "
                            "Foreground.", {"type": "string", "enum": ["Background", "Foreground", "Orphan"]}),
)
LOG_PARAMS = (
    _q("container", "The container for which to stream logs. Defaults to the only container of the pod.", _STR),
    _q("follow", "Follow the log stream of the pod.", _BOOL),
    _q("limitBytes", "The number of bytes to read from the server before terminating the log output.", _INT),
    _q("previous", "Return previous terminated container logs.", _BOOL),
    _q("sinceSeconds", "A relative time in seconds before the current time from which to show logs.", _INT),
    _q("tailLines", "The number of lines from the end of the logs to show.", _INT),
    _q("timestamps", "If true, add an RFC3339 timestamp at the beginning of every line of log output.", _BOOL),
)


def _path_param(name: str, what: str) -> Param:
    return Param(name, "path", what, _STR, required=True)


NAME_PARAM = _path_param("name", "name of the object")
NAMESPACE_PARAM = _path_param("namespace", "object name and auth scope, such as for teams and projects")


@dataclass(frozen=True)
class Body:
    schema: Obj
    media_types: tuple[str, ...] = (JSON, "application/yaml")
    required: bool = True


@dataclass(frozen=True)
class Operation:
    method: str  # get | put | post | patch | delete
    operation_id: str
    action: str  # x-kubernetes-action
    gvk: tuple[str, str, str]
    description: str
    params: tuple[Param, ...] = ()
    body: Body | None = None
    responses: dict[str, Obj] = field(default_factory=dict)  # code → schema ({} = no body)
    produces: tuple[str, ...] = (JSON,)


@dataclass
class PathItem:
    params: list[Param]
    operations: list[Operation] = field(default_factory=list)


def ref(name: str) -> Obj:
    return {"$ref": name}


# Subresources that have their own kind (group, version, kind, definition).
_SUB_KIND = {
    "scale": ("autoscaling", "v1", "Scale", "io.k8s.api.autoscaling.v1.Scale"),
    "binding": ("", "v1", "Binding", "io.k8s.api.core.v1.Binding"),
    "eviction": ("policy", "v1", "Eviction", "io.k8s.api.policy.v1.Eviction"),
}
PUBLISHED_SUBRESOURCES = ("status", "scale", "binding", "eviction", "log")
# Connect subresources (streams and proxies): (kind of their options, query parameters, methods).
_STREAM_FLAGS = ("stderr", "stdin", "stdout", "tty")
_CONNECT: dict[str, tuple[tuple[Param, ...], tuple[str, ...]]] = {
    "exec": ((_q("command", "Command is the remote command to execute. argv array. Not executed within a shell.",
                 _STR),
              _q("container", "Container in which to execute the command. Defaults to only container if there "
                              "is only one container in the pod.", _STR),
              *(_q(f, f"Redirect the standard {f[3:] or 'terminal'} stream of the pod for this call.", _BOOL)
                for f in _STREAM_FLAGS)), ("get", "post")),
    "attach": ((_q("container", "The container in which to execute the command. Defaults to only container if "
                                "there is only one container in the pod.", _STR),
                *(_q(f, f"Redirect the standard {f[3:] or 'terminal'} stream of the pod for this call.", _BOOL)
                  for f in _STREAM_FLAGS)), ("get", "post")),
    "portforward": ((_q("ports", "List of ports to forward. Required when using WebSockets", _INT),), ("get", "post")),
    "proxy": ((_q("path", "Path is the URL path to use for the current proxy request.", _STR),),
              ("get", "put", "post", "delete", "options", "head", "patch")),
}


def _gv_prefix(rt: ResourceType) -> str:
    return f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"


def _op_group(rt: ResourceType) -> str:
    group = rt.group.split(".", 1)[0] if rt.group else "core"
    return group[:1].upper() + group[1:] + rt.version[:1].upper() + rt.version[1:]


def paths(rt: ResourceType) -> dict[str, PathItem]:
    """Every path of one resource type → its operations."""
    if rt.custom is not None:
        kind_def, list_def = rt.custom.definition, rt.custom.definition + "List"
    else:
        kind_def = schemas.definition_name(rt.group, rt.version, rt.kind) or ""
        list_def = schemas.definition_name(rt.group, rt.version, rt.list_kind) or ""
    if not kind_def:
        return {}
    base = _gv_prefix(rt)
    g = _op_group(rt)
    kind_ref, list_ref = ref(kind_def), ref(list_def)
    gvk = (rt.group, rt.version, rt.kind)
    scope = "Namespaced" if rt.namespaced else ""
    coll_path = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    scope_params = [NAMESPACE_PARAM] if rt.namespaced else []
    verbs = set(rt.verbs)
    out: dict[str, PathItem] = {}
    what = rt.kind
    write = (DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION)

    coll = PathItem([*scope_params, PRETTY])
    if "list" in verbs:
        coll.operations.append(Operation("get", f"list{g}{scope}{what}", "list", gvk,
                                         f"list or watch objects of kind {what}", LIST_PARAMS,
                                         responses={"200": list_ref}))
    if "create" in verbs:
        coll.operations.append(Operation("post", f"create{g}{scope}{what}", "post", gvk, f"create a {what}",
                                         write, Body(kind_ref),
                                         responses={"200": kind_ref, "201": kind_ref, "202": kind_ref}))
    if "deletecollection" in verbs:
        coll.operations.append(Operation("delete", f"delete{g}Collection{scope}{what}", "deletecollection",
                                         gvk, f"delete collection of {what}",
                                         (*DELETE_PARAMS, *[p for p in LIST_PARAMS if p.name != "watch"]),
                                         Body(ref(DELETE_OPTIONS), (JSON,), required=False),
                                         responses={"200": ref(STATUS)}))
    out[coll_path] = coll

    item = PathItem([NAME_PARAM, *scope_params, PRETTY])
    if "get" in verbs:
        item.operations.append(Operation("get", f"read{g}{scope}{what}", "get", gvk,
                                         f"read the specified {what}", responses={"200": kind_ref}))
    if "update" in verbs:
        item.operations.append(Operation("put", f"replace{g}{scope}{what}", "put", gvk,
                                         f"replace the specified {what}", write, Body(kind_ref),
                                         responses={"200": kind_ref, "201": kind_ref}))
    if "patch" in verbs:
        item.operations.append(_patch(f"patch{g}{scope}{what}", gvk, f"partially update the specified {what}",
                                      kind_ref))
    if "delete" in verbs:
        item.operations.append(Operation("delete", f"delete{g}{scope}{what}", "delete", gvk,
                                         f"delete a {what}", DELETE_PARAMS,
                                         Body(ref(DELETE_OPTIONS), (JSON,), required=False),
                                         responses={"200": kind_ref, "202": kind_ref}))
    out[f"{coll_path}/{{name}}"] = item

    if "watch" in verbs:
        watch_params = tuple(p for p in LIST_PARAMS if p.name != "watch")
        event = {"200": ref(WATCH_EVENT)}
        watch_coll = f"{base}/watch/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced \
            else f"{base}/watch/{rt.plural}"
        out[watch_coll] = PathItem([*scope_params, PRETTY, *watch_params], [Operation(
            "get", f"watch{g}{scope}{what}List", "watchlist", gvk,
            f"watch individual changes to a list of {what}. deprecated: use the 'watch' parameter with a list "
            "operation instead.", responses=event)])
        out[f"{watch_coll}/{{name}}"] = PathItem([NAME_PARAM, *scope_params, PRETTY, *watch_params], [
            Operation("get", f"watch{g}{scope}{what}", "watch", gvk,
                      f"watch changes to an object of kind {what}. deprecated: use the 'watch' parameter with "
                      "a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
                      responses=event)])
    if rt.namespaced and "list" in verbs:
        out[f"{base}/{rt.plural}"] = PathItem([PRETTY, *LIST_PARAMS], [Operation(
            "get", f"list{g}{what}ForAllNamespaces", "list", gvk, f"list or watch objects of kind {what}",
            responses={"200": list_ref})])
        if "watch" in verbs:
            out[f"{base}/watch/{rt.plural}"] = PathItem(
                [PRETTY, *(p for p in LIST_PARAMS if p.name != "watch")],
                [Operation("get", f"watch{g}{what}ListForAllNamespaces", "watchlist", gvk,
                           f"watch individual changes to a list of {what}. deprecated: use the 'watch' "
                           "parameter with a list operation instead.", responses={"200": ref(WATCH_EVENT)})])

    for sub in rt.subresources:
        if sub in PUBLISHED_SUBRESOURCES:
            out[f"{coll_path}/{{name}}/{sub}"] = _subresource(rt, sub, g, scope, scope_params, kind_ref)
        elif sub in _CONNECT:
            out.update(_connect(rt, sub, g, scope, coll_path, scope_params))
    return out


def _connect(rt: ResourceType, sub: str, g: str, scope: str, coll_path: str,
             scope_params: list[Param]) -> dict[str, PathItem]:
    """exec, attach, portforward, proxy as the real API server documents them (`connect` operations, tagged with
    the options kind, e.g. PodExecOptions, answering a string)."""
    params, methods = _CONNECT[sub]
    title = "PortForward" if sub == "portforward" else sub[:1].upper() + sub[1:]
    gvk = (rt.group, rt.version, f"{rt.kind}{title}Options")
    out: dict[str, PathItem] = {}
    variants = [(f"{coll_path}/{{name}}/{sub}", "", params)]
    if sub == "proxy":
        variants.append((f"{coll_path}/{{name}}/{sub}/{{path}}", "WithPath", ()))
    for path, suffix, query in variants:
        item = PathItem([NAME_PARAM, *scope_params] + ([_path_param("path", "path to the resource")]
                                                        if suffix else []))
        for method in methods:
            verb = method[:1].upper() + method[1:]
            item.operations.append(Operation(
                method, f"connect{g}{verb}{scope}{rt.kind}{title}{suffix}", "connect", gvk,
                f"connect {method.upper()} requests to {sub} of {rt.kind}", query, responses={"200": _STR},
                produces=("*/*",)))
        out[path] = item
    return out


def _patch(op_id: str, gvk: tuple[str, str, str], description: str, result: Obj) -> Operation:
    return Operation("patch", op_id, "patch", gvk, description, (DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION),
                     Body({}, PATCH_TYPES), responses={"200": result, "201": result})


def _subresource(rt: ResourceType, sub: str, g: str, scope: str, scope_params: list[Param],
                 kind_ref: Obj) -> PathItem:
    title = sub[:1].upper() + sub[1:]
    op = f"{g}{scope}{rt.kind}{title}"
    item = PathItem([NAME_PARAM, *scope_params, PRETTY])
    gvk = (rt.group, rt.version, rt.kind)
    write = (DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION)
    if sub == "log":
        item.operations.append(Operation("get", f"read{op}", "get", gvk, f"read log of the specified {rt.kind}",
                                         LOG_PARAMS, responses={"200": _STR}, produces=("text/plain",)))
    elif sub in ("binding", "eviction"):
        group, version, kind, definition = _SUB_KIND[sub]
        body = ref(definition)
        item.operations.append(Operation("post", f"create{op}", "post", (group, version, kind),
                                         f"create {sub} of a {rt.kind}", write, Body(body),
                                         responses={"200": body, "201": body, "202": body}))
    else:
        target = kind_ref
        if sub in _SUB_KIND:
            group, version, kind, definition = _SUB_KIND[sub]
            gvk, target = (group, version, kind), ref(definition)
        item.operations.append(Operation("get", f"read{op}", "get", gvk,
                                         f"read {sub} of the specified {rt.kind}", responses={"200": target}))
        item.operations.append(Operation("put", f"replace{op}", "put", gvk,
                                         f"replace {sub} of the specified {rt.kind}", write, Body(target),
                                         responses={"200": target, "201": target}))
        item.operations.append(_patch(f"patch{op}", gvk, f"partially update {sub} of the specified {rt.kind}",
                                      target))
    return item


def json_patch_schema() -> Obj:
    """An RFC 6902 JSON Patch document."""
    op = {"type": "object", "required": ["op", "path"],
          "properties": {"op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                         "path": {"type": "string"}, "from": {"type": "string"}, "value": {}}}
    return {"type": "array", "items": op}
