"""Response bodies: JSON objects, or server-side Tables when kubectl asks for them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from flask import Response

from master.registry.resource import ResourceType
from master.registry.tables import DEFAULT, TableDef, row_cells

Obj = dict[str, Any]


def json_response(obj: Any, status: int = 200) -> Response:
    data = json.dumps(obj, separators=(",", ":"))
    return Response(data + "\n", status=status, mimetype="application/json")


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                  for p in part.split(";")[1:] if "=" in p}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def table_version(accept: str) -> str:
    for part in accept.split(","):
        if "as=Table" in part and "v=v1beta1" in part and "v=v1;" not in part + ";":
            return "meta.k8s.io/v1beta1"
        if "as=Table" in part:
            return "meta.k8s.io/v1"
    return "meta.k8s.io/v1"


@dataclass(frozen=True)
class Renderer:
    resource: ResourceType
    table: TableDef | None
    api_version: str = "meta.k8s.io/v1"
    include_object: str = "Metadata"

    def one(self, obj: Obj) -> Obj:
        if self.table is None:
            return obj
        return self._table([obj], {"resourceVersion": obj.get("metadata", {}).get("resourceVersion", "")})

    def many(self, listing: Obj) -> Obj:
        if self.table is None:
            return listing
        return self._table(listing["items"], listing["metadata"])

    def _table(self, items: list[Obj], metadata: Obj) -> Obj:
        assert self.table is not None
        now = dt.datetime.now(dt.UTC)
        rows = []
        for obj in items:
            row: Obj = {"cells": row_cells(self.table, obj, now)}
            if self.include_object == "Object":
                row["object"] = {**obj, "kind": self.resource.kind, "apiVersion": self.resource.api_version}
            elif self.include_object != "None":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": obj.get("metadata", {})}
            rows.append(row)
        return {"kind": "Table", "apiVersion": self.api_version, "metadata": metadata,
                "columnDefinitions": [c.definition() for c in self.table.columns], "rows": rows}


def renderer(rt: ResourceType, accept: str, include_object: str) -> Renderer:
    if not wants_table(accept):
        return Renderer(rt, None)
    return Renderer(rt, rt.table or DEFAULT, table_version(accept), include_object or "Metadata")
