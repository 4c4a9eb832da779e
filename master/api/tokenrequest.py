"""`POST …/serviceaccounts/NAME/token`: TokenRequest, which `kubectl create token` and every agent call.

The answer is Kubernetes' `authentication.k8s.io/v1` TokenRequest with the
token in `status`. As kube-apiserver: `expirationSeconds` defaults to an hour,
may not be under ten minutes or over 2^32 s, and is cut to the master's
`service_account_max_token_seconds`; audiences default to the API's own; a
`boundObjectRef` (Pod, Secret) must name an object that exists with that uid,
and the token dies with it. A node (NodeRestriction) may ask only for a token
bound to one of its own pods running as that service account.
"""

from __future__ import annotations

from typing import Any

from flask import Request

from core import errors
from core.kube import timefmt
from master.api import body as bodies
from master.registry.context import ApiContext, Identity
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

Obj = dict[str, Any]
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600
MAX_SECONDS = 2 ** 32
_BOUND_KINDS = {"Pod": "pods", "Secret": "secrets"}


def _invalid(field: str, message: str, name: str) -> errors.Invalid:
    return errors.Invalid(message=f'TokenRequest.authentication.k8s.io "{name}" is invalid: {field}: {message}',
                          kind="TokenRequest", name=name, group="authentication.k8s.io",
                          causes=[errors.Cause(field, message)])


def handle(ctx: ApiContext, handlers: Handlers, rt: ResourceType, ns: str, name: str, request: Request,
           identity: Identity, dry_run: bool) -> Obj:
    body = bodies.decode_object(bodies.read(request, ctx.settings.max_body_bytes), bodies.media_type(request))
    if body.get("kind") not in (None, "TokenRequest"):
        raise errors.BadRequest(message=f"expected a TokenRequest, not {body.get('kind')}")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    sa = handlers.get(rt, ns, name)  # 404 for a service account that does not exist
    seconds = spec.get("expirationSeconds", DEFAULT_SECONDS)
    if seconds is None:
        seconds = DEFAULT_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise _invalid("spec.expirationSeconds", f"Invalid value: {seconds!r}: must be an integer", name)
    if seconds < MIN_SECONDS:
        raise _invalid("spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration less "
                                                 "than 10 minutes", name)
    if seconds > MAX_SECONDS:
        raise _invalid("spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a duration larger "
                                                 "than 2^32 seconds", name)
    seconds = min(seconds, ctx.settings.service_account_max_token_seconds or seconds)
    audiences = spec.get("audiences") or list(ctx.sa_tokens.audiences)
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        raise _invalid("spec.audiences", "Invalid value: must be a list of non-empty strings", name)
    bound = _bound_object(ctx, ns, spec.get("boundObjectRef"), name)
    node = identity.node_name
    if node is not None:
        pod = bound[1] if bound is not None and bound[0]["kind"] == "Pod" else None
        pod_spec = (pod or {}).get("spec") or {}
        if pod is None or pod_spec.get("nodeName") != node or (pod_spec.get("serviceAccountName") or "default") \
                != name:
            raise errors.Forbidden(message=f'serviceaccounts "{name}" is forbidden: node requested token bound to '
                                           f"a pod not scheduled on it or not running as this service account")
    ref = bound[0] if bound is not None else None
    token, expires = ("", 0) if dry_run else ctx.sa_tokens.bound(ns, sa, audiences, seconds, ref)
    status = {"token": token, "expirationTimestamp": timefmt.rfc3339(float(expires))} if token else {}
    out_spec: Obj = {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": ref}
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": timefmt.rfc3339()},
            "spec": out_spec, "status": status}


def _bound_object(ctx: ApiContext, ns: str, ref: Any, name: str) -> tuple[Obj, Obj] | None:
    if not ref:
        return None
    if not isinstance(ref, dict) or ref.get("kind") not in _BOUND_KINDS:
        raise _invalid("spec.boundObjectRef.kind", f'Unsupported value: {(ref or {}).get("kind")!r}: supported '
                                                   'values: "Pod", "Secret"', name)
    plural = _BOUND_KINDS[str(ref["kind"])]
    found = ctx.store.get(f"/core/{plural}/{ns}/{ref.get('name')}")
    if found is None:
        raise errors.NotFound(message=f'{plural} "{ref.get("name")}" not found', kind=plural,
                              name=str(ref.get("name")))
    uid = found["metadata"].get("uid")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.Conflict(message=f"the UID in the bound object reference ({ref['uid']}) does not match the UID "
                                      "in record. The object might have been deleted and then recreated")
    return {"kind": ref["kind"], "apiVersion": "v1", "name": ref.get("name"), "uid": uid}, found
