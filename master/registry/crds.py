"""The CustomResourceDefinition kind (apiextensions.k8s.io/v1): what a CRD may say, checked when it is written.

A CRD is the user's declaration of a new resource; everything that serves its
objects (`customresources`) trusts what this strategy let through, so the checks
here are Kubernetes' own: the name is `plural.group`, names are DNS labels,
exactly one stored version, structural schemas (`crdschema`), printer columns
and scale paths that can be evaluated, and an unchangeable scope. pikube's own
limits are refused with a sentence rather than ignored: conversion webhooks (it
calls no webhooks) and CEL rules. A new CRD gets the cleanup finalizer, so its
objects are deleted before it goes (the `customresourcedefinitions` controller).
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import Cause
from master.registry import crdschema
from master.registry.resource import Context, Strategy
from master.registry.tables import AGE, NAME, Column, TableDef

Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
STORE_PREFIX = f"/{GROUP}/customresourcedefinitions/"  # where the CRDs are stored (ResourceType.prefix)
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
PRINTER_TYPES = ("integer", "number", "string", "boolean", "date")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")

TABLE = TableDef((NAME, Column("Created At", lambda o, n: o.get("metadata", {}).get("creationTimestamp"),
                               type="date", description="Date and time of creation")))


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def storage_version(crd: Obj) -> str:
    for v in _list(_dict(crd.get("spec")).get("versions")):
        if isinstance(v, dict) and v.get("storage") is True:
            return str(v.get("name", ""))
    return ""


class CustomResourceDefinitionStrategy(Strategy):
    has_status = True

    def __init__(self, builtin_groups: frozenset[str] = frozenset()) -> None:
        # Groups pikube serves itself: a CRD may not take over (or shadow) one of their kinds.
        self.builtin_groups = builtin_groups

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        conversion = spec.setdefault("conversion", {"strategy": "None"})
        if isinstance(conversion, dict):
            conversion.setdefault("strategy", "None")
        names = spec.get("names")
        if isinstance(names, dict) and isinstance(names.get("kind"), str):
            if isinstance(names.get("plural"), str):
                names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")

    def initial_status(self, obj: Obj) -> Obj:
        return {"acceptedNames": {"kind": "", "plural": ""}, "conditions": [], "storedVersions": []}

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        meta = obj.setdefault("metadata", {})
        finalizers = list(meta.get("finalizers") or [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        meta["finalizers"] = finalizers

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return bool(new.get("spec") != old.get("spec"))

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value")]
        out: list[Cause] = []
        group = spec.get("group")
        names = _dict(spec.get("names"))
        plural = names.get("plural")
        name = str(_dict(obj.get("metadata")).get("name", ""))
        if not isinstance(group, str) or not group:
            out.append(Cause("spec.group", "Required value"))
        elif "." not in group:
            out.append(Cause("spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'))
        elif not _DNS1123_SUBDOMAIN.fullmatch(group):
            out.append(Cause("spec.group", f'Invalid value: "{group}": a lowercase RFC 1123 subdomain must '
                                           "consist of lower case alphanumeric characters, '-' or '.'"))
        elif group in self.builtin_groups:
            out.append(Cause("spec.group", f'Invalid value: "{group}": the group is served by pikube itself'))
        if isinstance(plural, str) and isinstance(group, str) and name != f"{plural}.{group}":
            out.append(Cause("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
        out += _names(names, "spec.names")
        scope = spec.get("scope")
        if scope not in ("Namespaced", "Cluster"):
            out.append(Cause("spec.scope", "Required value" if not scope else
                             f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"'))
        out += _versions(spec)
        strategy = _dict(spec.get("conversion")).get("strategy", "None")
        if strategy == "Webhook":
            out.append(Cause("spec.conversion.strategy", 'Unsupported value: "Webhook": supported values: "None" '
                             "(pikube calls no conversion webhooks: serve one version, or versions that differ "
                             "only in name)"))
        elif strategy != "None":
            out.append(Cause("spec.conversion.strategy", f'Unsupported value: "{strategy}": supported values: '
                                                         '"None", "Webhook"'))
        return out

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        ns, os_ = _dict(new.get("spec")), _dict(old.get("spec"))
        out: list[Cause] = []
        if ns.get("scope") != os_.get("scope"):
            out.append(Cause("spec.scope", f'Invalid value: "{ns.get("scope")}": field is immutable'))
        if ns.get("group") != os_.get("group"):
            out.append(Cause("spec.group", f'Invalid value: "{ns.get("group")}": field is immutable'))
        if _dict(ns.get("names")).get("plural") != _dict(os_.get("names")).get("plural"):
            out.append(Cause("spec.names.plural", "Invalid value: \"" + str(_dict(ns.get("names")).get("plural"))
                             + '": field is immutable'))
        stored = _list(_dict(new.get("status")).get("storedVersions"))
        served = {str(v.get("name")) for v in _list(ns.get("versions")) if isinstance(v, dict)}
        for version in stored:
            if version not in served:
                out.append(Cause("status.storedVersions", f'Invalid value: "{version}": must appear in '
                                                          "spec.versions"))
        return out


def _names(names: Obj, path: str) -> list[Cause]:
    out: list[Cause] = []
    for field in ("plural", "kind"):
        value = names.get(field)
        if not isinstance(value, str) or not value:
            out.append(Cause(f"{path}.{field}", "Required value"))
    plural, kind = names.get("plural"), names.get("kind")
    for field in ("plural", "singular"):
        value = names.get(field)
        if isinstance(value, str) and value and not _DNS1035.fullmatch(value):
            out.append(Cause(f"{path}.{field}", f'Invalid value: "{value}": a lowercase RFC 1123 label must '
                                                "consist of lower case alphanumeric characters or '-'"))
    for field in ("kind", "listKind"):
        value = names.get(field)
        if isinstance(value, str) and value and not _KIND.fullmatch(value):
            out.append(Cause(f"{path}.{field}", f'Invalid value: "{value}": may have mixed case, but should '
                                                "otherwise match: ^[a-z]([-a-z0-9]*[a-z0-9])?$"))
    if isinstance(kind, str) and kind and names.get("listKind") == kind:
        out.append(Cause(f"{path}.listKind", f'Invalid value: "{kind}": kind and listKind may not be the same'))
    for i, short in enumerate(_list(names.get("shortNames"))):
        if not isinstance(short, str) or not _DNS1035.fullmatch(short):
            out.append(Cause(f"{path}.shortNames[{i}]", f'Invalid value: "{short}": a lowercase RFC 1123 label '
                                                        "must consist of lower case alphanumeric characters or '-'"))
    for i, cat in enumerate(_list(names.get("categories"))):
        if not isinstance(cat, str) or not _DNS1035.fullmatch(cat):
            out.append(Cause(f"{path}.categories[{i}]", f'Invalid value: "{cat}": a lowercase RFC 1123 label '
                                                        "must consist of lower case alphanumeric characters or '-'"))
    if isinstance(plural, str) and plural in _list(names.get("shortNames")):
        out.append(Cause(f"{path}.shortNames", f'Invalid value: "{plural}": must not be the plural name'))
    return out


def _versions(spec: Obj) -> list[Cause]:
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        return [Cause("spec.versions", "Invalid value: null: must have exactly one version marked as storage "
                                       "version")]
    out: list[Cause] = []
    seen: set[str] = set()
    storage = 0
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict):
            out.append(Cause(path, "Invalid value: must be an object"))
            continue
        name = v.get("name")
        if not isinstance(name, str) or not name:
            out.append(Cause(f"{path}.name", "Required value"))
        elif not _DNS1035.fullmatch(name):
            out.append(Cause(f"{path}.name", f'Invalid value: "{name}": a DNS-1035 label must consist of lower '
                                             "case alphanumeric characters or '-', start with an alphabetic "
                                             "character, and end with an alphanumeric character"))
        elif name in seen:
            out.append(Cause(f"{path}.name", f'Duplicate value: "{name}"'))
        else:
            seen.add(name)
        for flag in ("served", "storage"):
            if not isinstance(v.get(flag), bool):
                out.append(Cause(f"{path}.{flag}", "Required value"))
        if v.get("storage") is True:
            storage += 1
        schema = _dict(v.get("schema")).get("openAPIV3Schema")
        out += crdschema.structural_errors(schema, f"{path}.schema.openAPIV3Schema")
        out += _subresources(_dict(v.get("subresources")), f"{path}.subresources")
        for j, col in enumerate(_list(v.get("additionalPrinterColumns"))):
            out += _column(col, f"{path}.additionalPrinterColumns[{j}]")
    if storage != 1:
        out.append(Cause("spec.versions", f"Invalid value: {_shown_versions(versions)}: must have exactly one "
                                          "version marked as storage version"))
    if not any(isinstance(v, dict) and v.get("served") is True for v in versions):
        out.append(Cause("spec.versions", f"Invalid value: {_shown_versions(versions)}: must have at least one "
                                          "served version"))
    return out


def _shown_versions(versions: list[Any]) -> str:
    return "[" + " ".join(str(v.get("name")) for v in versions if isinstance(v, dict)) + "]"


def _subresources(sub: Obj, path: str) -> list[Cause]:
    out: list[Cause] = []
    scale = sub.get("scale")
    if isinstance(scale, dict):
        for field, prefix, required in (("specReplicasPath", ".spec.", True), ("statusReplicasPath", ".status.",
                                                                                True),
                                        ("labelSelectorPath", "", False)):
            value = scale.get(field)
            if value is None:
                if required:
                    out.append(Cause(f"{path}.scale.{field}", "Required value"))
                continue
            if not isinstance(value, str) or not re.fullmatch(r"(\.[A-Za-z0-9_-]+)+", value):
                out.append(Cause(f"{path}.scale.{field}", f'Invalid value: "{value}": must be a simple json path '
                                                          "starting with ."))
            elif prefix and not value.startswith(prefix):
                out.append(Cause(f"{path}.scale.{field}", f'Invalid value: "{value}": should be a json path under '
                                                          f"{prefix.rstrip('.')}"))
            elif not prefix and not value.startswith((".spec.", ".status.")):
                out.append(Cause(f"{path}.scale.{field}", f'Invalid value: "{value}": should be a json path under '
                                                          "either .spec or .status"))
    return out


def _column(col: Any, path: str) -> list[Cause]:
    if not isinstance(col, dict):
        return [Cause(path, "Invalid value: must be an object")]
    out: list[Cause] = []
    for field in ("name", "type", "jsonPath"):
        if not col.get(field):
            out.append(Cause(f"{path}.{field}", "Required value"))
    typ = col.get("type")
    if typ and typ not in PRINTER_TYPES:
        out.append(Cause(f"{path}.type", f'Unsupported value: "{typ}": supported values: "' +
                         '", "'.join(PRINTER_TYPES) + '"'))
    json_path = col.get("jsonPath")
    if isinstance(json_path, str) and json_path and not json_path.startswith("."):
        out.append(Cause(f"{path}.jsonPath", f'Invalid value: "{json_path}": must be a simple json path starting '
                                             "with ."))
    return out


def default_columns() -> TableDef:
    """Name and Age: what `kubectl get` shows for a custom resource without printer columns."""
    return TableDef((NAME, AGE))
