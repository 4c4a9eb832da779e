"""OpenAPI documents: /openapi/v2 (what kubectl 1.20 asks, in protobuf) and /openapi/v3.

kubectl 1.20 requests /openapi/v2 as protobuf before `apply`/`create -f` and fails
on a 404. pikube answers a protobuf request with an empty (valid) Document, which
turns kubectl 1.20's client-side schema validation off rather than feeding it a
partial schema; a JSON request gets the JSON document. /openapi/v3 serves one
document per group-version, which current kubectl uses for `explain`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, Response, request

from master.api import schemas
from master.api.context import ApiContext
from master.api.render import json_response
from pikube import errors

Obj = dict[str, Any]


def blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("openapi", __name__)
    docs = schemas.Documents(ctx.catalog)

    @bp.get("/openapi/v2")
    def v2() -> Response:
        accept = request.headers.get("Accept", "")
        if "protobuf" in accept and "json" not in accept.split("protobuf")[0]:
            return Response(b"", mimetype="application/octet-stream")
        return json_response(docs.v2())

    @bp.get("/openapi/v3")
    def v3_index() -> Response:
        paths = {}
        for gv in docs.group_versions():
            doc = docs.v3(gv)
            digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()
            paths[gv_path(gv)] = {"serverRelativeURL": f"/openapi/v3/{gv_path(gv)}?hash={digest}"}
        return json_response({"paths": paths})

    @bp.get("/openapi/v3/<path:gv>")
    def v3(gv: str) -> Response:
        for known in docs.group_versions():
            if gv_path(known) == gv:
                resp = json_response(docs.v3(known))
                resp.headers["Cache-Control"] = "public, immutable" if request.args.get("hash") else "no-cache"
                return resp
        raise errors.NotFound(message=f"no OpenAPI document for {gv}")

    return bp


def gv_path(gv: str) -> str:
    return f"api/{gv}" if "/" not in gv else f"apis/{gv}"
