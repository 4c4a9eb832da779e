"""HTTP endpoints of the OpenAPI documents: /openapi/v2 (JSON or protobuf) and /openapi/v3.

/openapi/v3 is an index of one document per group-version, each addressed by a
`serverRelativeURL` carrying the document's SHA-512 (an immutable, cacheable URL:
a stale hash is redirected to the current one, as the real API server does).
Current kubectl reads these for `explain`, for client-side validation and to learn
that the server validates fields (`fieldValidation`).

/openapi/v2 answers a protobuf request (kubectl ≤ 1.26, and 1.20 before every
`apply`/`create -f`) with a real gnostic `Document` encoding of the same Swagger
2.0 document served as JSON — not an empty Document, which would only switch
kubectl 1.20's validation off. See `master.api.schema_proto` and docs/openapi.md.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from core import errors
from master.api.schema_docs import Documents, Rendered, gv_path
from master.registry.context import ApiContext
from master.registry.crds import STORE_PREFIX as CRD_PREFIX

# What kubectl asks for is `...spec.v2@v1.0+protobuf`, but "@" is not a token character: Go's
# mime.ParseMediaType (which client-go runs on every Content-Type) rejects it, so the real
# server answers with this spelling.
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def wants_protobuf(accept: str) -> bool:
    """Whether the Accept header prefers the protobuf rendering over JSON (first listed wins)."""
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media.endswith("+protobuf") or media == "application/protobuf":
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


def _send(rendered: Rendered, mimetype: str, immutable: bool) -> Response:
    """The cached document: gzip-encoded as stored when the client accepts it, else decompressed."""
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        resp = Response(rendered.gzipped, mimetype=mimetype)
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = Response(rendered.body, mimetype=mimetype)
    resp.headers["Vary"] = "Accept-Encoding"
    resp.headers["ETag"] = f'"{rendered.digest}"'
    resp.headers["Cache-Control"] = "public, immutable" if immutable else "no-cache, private"
    return resp


def blueprint(ctx: ApiContext) -> Blueprint:
    bp = Blueprint("openapi", __name__)
    docs = Documents(ctx.catalog, lambda name: ctx.store.get(f"{CRD_PREFIX}{name}"))

    @bp.get("/openapi/v2")
    def v2() -> Response:
        if wants_protobuf(request.headers.get("Accept", "")):
            return _send(docs.v2_protobuf(), PROTOBUF, immutable=False)
        return _send(docs.v2(), "application/json", immutable=False)

    @bp.get("/openapi/v3")
    @bp.get("/openapi/v3/")
    def v3_index() -> Response:
        resp = Response(_dumps(docs.v3_index()), mimetype="application/json")
        resp.headers["Cache-Control"] = "no-cache, private"
        return resp

    @bp.get("/openapi/v3/<path:path>")
    def v3(path: str) -> Response:
        for gv in docs.group_versions():
            if gv_path(gv) != path.strip("/"):
                continue
            rendered = docs.v3(gv)
            assert rendered is not None
            wanted = request.args.get("hash")
            if wanted and wanted != rendered.digest:
                return Response(status=301, headers={
                    "Location": f"/openapi/v3/{gv_path(gv)}?hash={rendered.digest}"})
            return _send(rendered, "application/json", immutable=bool(wanted))
        raise errors.NotFound(message="the server could not find the requested resource")

    return bp


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
