"""The OpenAPI definitions of custom resources, made from their CRDs' schemas when a document is rendered.

`kubectl explain` (OpenAPI v3 from 1.27, v2 before) and kubectl's validation read
a custom kind's definition the way they read a built-in one, so each served
version of a CRD becomes two definitions named as Kubernetes names them
(`com.example.stable.v1.CronTab` and `…CronTabList`): the CRD's
`openAPIV3Schema` with `apiVersion`, `kind` and `metadata` (ObjectMeta) filled
in. The schemas are read from the stored CRDs, with their descriptions, only
while a document is built: the catalog keeps compact schemas without them.

Swagger 2.0 cannot say everything a structural schema says: as kube-apiserver
does for `/openapi/v2`, `nullable`, `anyOf`/`oneOf`/`not` and `allOf` are
dropped, and below `x-kubernetes-preserve-unknown-fields` the properties are
left out, so old kubectl's client-side validation never refuses a field the
server would keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from master.registry.catalog import Catalog

Obj = dict[str, Any]

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_API_VERSION = {"type": "string", "description": "APIVersion defines the versioned schema of this representation "
                "of an object. Servers should convert recognized schemas to the latest internal value, and may "
                "reject unrecognized values."}
_KIND = {"type": "string", "description": "Kind is a string value representing the REST resource this object "
         "represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase."}


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def definitions(catalog: Catalog, load: Callable[[str], Obj | None]) -> dict[str, Obj]:
    """Definition name → schema (bare `$ref` names, as `schemas.definitions()`), for every served custom kind."""
    out: dict[str, Obj] = {}
    crds: dict[str, Obj | None] = {}
    for rt in catalog:
        if rt.custom is None:
            continue
        name = rt.custom.crd_name
        if name not in crds:
            crds[name] = load(name)
        crd = crds[name]
        schema: Obj = rt.custom.schema
        if crd is not None:
            for v in _dict(crd.get("spec")).get("versions") or []:
                if isinstance(v, dict) and v.get("name") == rt.version:
                    schema = _dict(_dict(v.get("schema")).get("openAPIV3Schema")) or schema
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        kind_def = rt.custom.definition
        props = dict(_dict(schema.get("properties")))
        props["apiVersion"] = _API_VERSION
        props["kind"] = _KIND
        props["metadata"] = {"$ref": META + "ObjectMeta", "description": "Standard object's metadata. More info: "
                             "https://git.k8s.io/community/contributors/devel/sig-architecture/"
                             "api-conventions.md#metadata"}
        out[kind_def] = {**_int_or_string(schema), "type": "object", "properties": {
                             k: _int_or_string(v) for k, v in props.items()},
                         "x-kubernetes-group-version-kind": [gvk]}
        out[kind_def + "List"] = {
            "description": f"{rt.kind}List is a list of {rt.kind}", "type": "object", "required": ["items"],
            "properties": {"apiVersion": _API_VERSION, "kind": _KIND,
                           "items": {"type": "array", "description": f"List of {rt.plural}. More info: "
                                     "https://git.k8s.io/community/contributors/devel/sig-architecture/"
                                     "api-conventions.md", "items": {"$ref": kind_def}},
                           "metadata": {"$ref": META + "ListMeta", "description": "Standard list metadata."}},
            "x-kubernetes-group-version-kind": [{**gvk, "kind": rt.list_kind}]}
    return out


def _int_or_string(schema: Any) -> Any:
    """`x-kubernetes-int-or-string` spelled out for OpenAPI v3 readers (`anyOf` integer, string), as Kubernetes
    publishes it; `to_v2` drops the `anyOf` again."""
    if not isinstance(schema, dict):
        return schema
    out = {k: ({n: _int_or_string(p) for n, p in v.items()} if k == "properties" and isinstance(v, dict)
               else _int_or_string(v) if k in ("items", "additionalProperties") else v)
           for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string") is True and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


_V2_DROPPED = ("nullable", "anyOf", "oneOf", "not", "allOf", "x-kubernetes-validations")


def to_v2(schema: Any) -> Any:
    """A structural schema as Swagger 2.0 can carry it (see the module docstring)."""
    if not isinstance(schema, dict):
        return schema
    out: Obj = {}
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    for key, value in schema.items():
        if key in _V2_DROPPED or (preserve and key in ("properties", "required")):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {n: to_v2(p) for n, p in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_v2(value)
        else:
            out[key] = value
    return out
