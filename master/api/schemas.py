"""OpenAPI documents built from the catalog (schemas are minimal for now)."""

from __future__ import annotations

from typing import Any

from master.api.catalog import Catalog
from master.api.resource import ResourceType

Obj = dict[str, Any]


def _definition_name(rt: ResourceType) -> str:
    group = {"": "core", "coordination.k8s.io": "coordination"}.get(rt.group, rt.group)
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


def _schema(rt: ResourceType) -> Obj:
    return {"type": "object", "description": f"{rt.kind} object",
            "x-kubernetes-group-version-kind": [{"group": rt.group, "version": rt.version, "kind": rt.kind}],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"type": "object"}, "spec": {"type": "object"},
                           "status": {"type": "object"}}}


class Documents:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def group_versions(self) -> list[str]:
        out: list[str] = []
        for rt in self.catalog:
            if rt.group_version not in out:
                out.append(rt.group_version)
        return out

    def v2(self) -> Obj:
        return {"swagger": "2.0", "info": {"title": "pikube", "version": "v1"}, "paths": {},
                "definitions": {_definition_name(rt): _schema(rt) for rt in self.catalog}}

    def v3(self, gv: str) -> Obj:
        rts = [rt for rt in self.catalog if rt.group_version == gv]
        return {"openapi": "3.0.0", "info": {"title": "pikube", "version": "v1"}, "paths": {},
                "components": {"schemas": {_definition_name(rt): _schema(rt) for rt in rts}}}
