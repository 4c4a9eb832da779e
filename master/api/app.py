"""The Flask app factory: builds the API app from an `ApiContext`; nothing binds at import time.

Every request is authenticated before it reaches a handler (only /version,
the health checks and /cacerts are public), and every error leaves as a
Kubernetes `Status` through one handler. Every response carries an `Audit-Id`
(as kube-apiserver's do); a request that fails inside the master answers a
`Status` 500 and leaves one log line with that id, the identity, the path and
the exception's type, and a traceback only while `TRACEBACKS` allows (a client
that can provoke a failure must not be able to fill the SD card with them).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter

from core import errors
from core.ratelimit import TokenBucket
from master.api import accessreview, discovery, metrics, openapi
from master.api.auth import authenticate, authorize_path, impersonate
from master.api.join import JoinService
from master.api.masterjoin import MasterJoinService
from master.api.render import json_response
from master.api.routes import group_blueprint
from master.registry.context import ApiContext
from master.registry.verbs import Handlers

log = logging.getLogger(__name__)
_VERBS = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch", "DELETE": "delete"}


def _non_resource(path: str) -> bool:
    """Whether `path` is a Kubernetes non-resource URL (discovery, OpenAPI ...), which RBAC decides by path.

    Resource requests (`/api/v1/...`, `/apis/G/V/...`) are authorized where they are routed; pikube's own
    endpoints (`/pikube/...`) check their callers themselves.
    """
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] == "pikube":
        return parts == []
    if parts[0] == "api":
        return len(parts) <= 2
    if parts[0] == "apis":
        return len(parts) <= 3
    return True


READ_ONLY_WARNING = ("this master's store has lost its quorum: it is read-only, and what it answers may be stale "
                     "until a majority of the etcd members is back")
PUBLIC = ("/version", "/healthz", "/livez", "/readyz", "/cacerts", "/pikube/v1/join", "/pikube/v1/join-master")
TRACEBACKS = TokenBucket(rate=1 / 60, burst=5)  # at most 5 at once, then one a minute
_PREFIX = os.urandom(3).hex()
_COUNTER = itertools.count(1)


class _PlainMap(Map):
    """Werkzeug's URL map, blind to WebSocket handshakes.

    Werkzeug binds a request carrying `Connection: Upgrade` and `Upgrade: websocket` with the scheme `wss`,
    and then matches only rules declared `websocket=True`; every other rule is a "WebSocket mismatch", a
    generic 400 before any view runs. The API's rules are plain HTTP rules whose views decide about upgrades
    themselves (exec, attach and port-forward relay them; any other path answers as it would without the
    header), so the handshake headers must not take part in routing.
    """

    def bind_to_environ(self, environ: Any, server_name: str | None = None,
                        subdomain: str | None = None) -> MapAdapter:
        adapter = super().bind_to_environ(environ, server_name, subdomain)
        adapter.websocket = False
        adapter.url_scheme = {"ws": "http", "wss": "https"}.get(adapter.url_scheme, adapter.url_scheme)
        return adapter


class _ApiFlask(Flask):
    url_map_class = _PlainMap


def create_app(ctx: ApiContext, join: JoinService | None = None, admin_token: str = "",
               stopping: threading.Event | None = None, master_join: MasterJoinService | None = None) -> Flask:
    app = _ApiFlask("pikube-master")
    app.config["MAX_CONTENT_LENGTH"] = None
    stop = stopping or threading.Event()
    handlers = Handlers(ctx)

    @app.before_request
    def authn() -> Response | None:
        g.request_id = f"{_PREFIX}-{next(_COUNTER)}"
        path = request.path.rstrip("/") or "/"
        if path in PUBLIC or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return None
        identity = authenticate(request.environ, admin_token, ctx.sa_tokens)
        if identity is None:
            raise errors.Unauthorized(message="Unauthorized")
        as_user = request.headers.get("Impersonate-User", "")
        as_groups = request.headers.getlist("Impersonate-Group")
        if as_user or as_groups:
            identity = impersonate(ctx, identity, as_user, as_groups)
        g.identity = identity
        if not identity.is_admin and _non_resource(path):
            authorize_path(ctx, identity, _VERBS.get(request.method, request.method.lower()), path)
        return None

    @app.errorhandler(errors.ApiError)
    def api_error(exc: errors.ApiError) -> Response:
        return json_response(exc.status(), exc.code)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        cls = {404: errors.NotFound, 405: errors.MethodNotAllowed, 413: errors.RequestEntityTooLarge,
               400: errors.BadRequest}.get(code, errors.InternalError)
        message = "the server could not find the requested resource" if code == 404 else str(exc.description)
        err = cls(message=message)
        return json_response(err.status(), err.code)

    @app.after_request
    def audit_id(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers["Audit-Id"] = rid
        if getattr(ctx.store, "read_only", False):  # kubectl prints a 299 warning as "Warning: …"
            response.headers.add("Warning", f'299 - "{READ_ONLY_WARNING}"')
        return response

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> Response:
        identity = g.get("identity")
        who = identity.user if identity is not None else "anonymous"
        log.error("request %s from %s: %s %s failed: %s", g.get("request_id", "-"), who, request.method,
                  request.path[:200], type(exc).__name__, exc_info=exc if TRACEBACKS.take() else None)
        text = " ".join(str(exc).split())[:200]
        err = errors.InternalError(message=f"Internal error occurred: {type(exc).__name__}: {text}")
        return json_response(err.status(), 500)

    @app.get("/pikube/v1/datastore")
    def datastore() -> Response:
        """The store's health (`pikube info`): the backend, and an etcd cluster's members and leader."""
        if not g.identity.is_admin:
            raise errors.Forbidden(message="only an administrator may read the datastore's health")
        return json_response(ctx.store.describe())

    @app.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        """OIDC discovery, as kube-apiserver serves it for the service account issuer."""
        s = ctx.settings
        return json_response({"issuer": s.service_account_issuer,
                              "jwks_uri": f"https://{s.advertise_address}:{s.port}/openid/v1/jwks",
                              "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                              "id_token_signing_alg_values_supported": ["ES256"]})

    @app.get("/openid/v1/jwks")
    def jwks() -> Response:
        resp = json_response(ctx.sa_tokens.jwks())
        resp.mimetype = "application/jwk-set+json"
        return resp

    @app.get("/version")
    def version() -> Response:
        return json_response(discovery.version_info())

    @app.get("/healthz")
    @app.get("/livez")
    @app.get("/readyz")
    def health() -> Response:
        ctx.store.revision()
        return Response("ok", mimetype="text/plain")

    @app.get("/cacerts")
    def cacerts() -> Response:
        if join is None:
            raise errors.NotFound(message="this server publishes no CA")
        return Response(join.ca_pem(), mimetype="application/x-pem-file")

    @app.post("/pikube/v1/join")
    def join_node() -> Response:
        if join is None:
            raise errors.NotFound(message="joining is not enabled on this server")
        return json_response(join.handle(request, handlers))

    @app.post("/pikube/v1/join-master")
    def join_master() -> Response:
        if master_join is None:
            raise errors.NotFound(message="adding masters is not enabled on this server")
        return json_response(master_join.handle(request))

    @app.post(f"/apis/{accessreview.GROUP}/{accessreview.VERSION}/{accessreview.PLURAL}")
    def access_review() -> Response:
        from master.api import body as bodies

        obj = bodies.decode_object(bodies.read(request, ctx.settings.max_body_bytes), bodies.media_type(request))
        return json_response(accessreview.review(ctx, g.identity, obj), 201)

    def _review_body() -> Any:
        from master.api import body as bodies

        return bodies.decode_object(bodies.read(request, ctx.settings.max_body_bytes), bodies.media_type(request))

    @app.post(f"/apis/{accessreview.AUTHN_GROUP}/v1/{accessreview.WHOAMI_PLURAL}")
    def whoami() -> Response:
        from master.api import body as bodies

        # The request holds nothing to read (an empty SelfSubjectReview, in JSON or protobuf): its size is checked.
        bodies.read(request, ctx.settings.max_body_bytes)
        return json_response(accessreview.whoami(g.identity), 201)

    @app.post(f"/apis/{accessreview.GROUP}/{accessreview.VERSION}/{accessreview.RULES_PLURAL}")
    def rules_review() -> Response:
        return json_response(accessreview.rules_review(ctx, g.identity, _review_body()), 201)

    @app.post(f"/apis/{accessreview.GROUP}/{accessreview.VERSION}/{accessreview.SUBJECT_PLURAL}")
    def subject_review() -> Response:
        return json_response(accessreview.subject_review(ctx, g.identity, _review_body()), 201)

    @app.post(f"/apis/{accessreview.GROUP}/{accessreview.VERSION}/namespaces/<namespace>/"
              f"{accessreview.LOCAL_PLURAL}")
    def local_subject_review(namespace: str) -> Response:
        return json_response(accessreview.subject_review(ctx, g.identity, _review_body(), namespace), 201)

    @app.get("/apis")
    @app.get("/apis/")
    def apis() -> Response:
        groups = discovery.api_group_list(ctx.catalog)
        groups["groups"].append(metrics.api_group())
        return json_response(groups)

    app.register_blueprint(openapi.blueprint(ctx))
    app.register_blueprint(metrics.blueprint(ctx))
    app.register_blueprint(group_blueprint(ctx, handlers, True, stop))
    app.register_blueprint(group_blueprint(ctx, handlers, False, stop))
    return app
