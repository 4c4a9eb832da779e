"""`pods/NAME/proxy/…`, `services/NAME/proxy/…`, `nodes/NAME/proxy/…`: HTTP to a pod, a service or an agent.

What `kubectl proxy` plus `curl localhost:8001/api/v1/namespaces/default/pods/$POD:8080/proxy/` (the
Kubernetes bootcamp) needs. NAME is `[scheme:]name[:port]` (kube-apiserver's
SplitSchemeNamePort; scheme `http` or `https`):

- a pod: the port given, else the first `containerPort` declared, else 80;
- a service: the port given by number or by name (a number is mapped to the
  service port's name, as kube-apiserver does), and a ready address of its
  Endpoints with a port of that name, picked at random — the pod behind it is
  the target;
- a node: its agent itself (the path as it is, on the agent's HTTPS port).

The master has no route to the pod network (a board's pods sit behind its
own bridge), so it never dials a pod: it asks the agent of the pod's board,
`/podProxy/NS/POD/SCHEME/PORT/PATH?QUERY` (agent/podproxy.py), which forwards to
that pod's IP — only a pod on its own board, so it is no open proxy — and
streams the answer back. The request goes with its method, query, body (at
most `max_body_bytes`) and headers, minus the hop-by-hop ones and the client's
credentials (`Authorization`, as kube-apiserver strips it). The answer is
streamed back as it arrives, each read waiting at most `READ_TIMEOUT` and the
whole at most `MAX_RESPONSE` bytes and `MAX_TIME` seconds; a path-absolute
`Location` is rewritten under the proxy prefix so redirects stay in it.
An empty sub-path on GET or HEAD is redirected to `…/proxy/` (301), as Kubernetes does.
An upgrade (a WebSocket to a dashboard in a pod) passes through as kube-apiserver passes it: the agent relays
it to the pod, the master relays it to the agent (core/relay.py), counted as a stream of that board.

Authorisation is the request's verb on `pods/proxy`, `services/proxy` or
`nodes/proxy` (GET/HEAD/OPTIONS get, POST create, PUT update, PATCH patch,
DELETE delete), checked in routes.dispatch before this runs.
"""

from __future__ import annotations

import contextlib
import random
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from flask import Response

from core import errors
from master.api import agentlink
from master.api.podstreams import is_upgrade, stream_slot, switch
from master.api.streaming import STREAM_HEADER
from master.registry.context import ApiContext
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

Obj = dict[str, Any]
READ_TIMEOUT = 60.0  # between two reads of the answer (the agent waits as long on the pod)
MAX_TIME = 600.0  # one proxied request and its answer
MAX_RESPONSE = 512 * 1024 * 1024
HEAD_TIMEOUT = 35.0  # the agent's answer head: the pod has 30 s to start its answer
ERROR_HEADER = "X-Pikube-Proxy-Error"  # the agent's own failure (not the pod's answer)
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length", "authorization", "expect"}
_SCHEMES = ("", "http", "https")


@dataclass(frozen=True)
class Where:
    """Where a proxied request goes: the node whose agent carries it, and the path on that agent."""

    node: str
    agent_path: str


def split_scheme_name_port(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise errors.BadRequest(message=f'invalid request "{text}"')
    if not name or scheme not in _SCHEMES:
        raise errors.BadRequest(message=f'invalid request "{text}"')
    return scheme or "http", name, port


def sub_path(environ: Obj, plural: str) -> tuple[str, str]:
    """(the proxy prefix as the client wrote it, the rest of the path after `…/proxy`, raw, '' when none)."""
    raw = str(environ.get("RAW_URI") or environ.get("PATH_INFO") or "").split("?", 1)[0]
    if raw.startswith(("http://", "https://")):
        raw = "/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else "/"
    segs = raw.split("/")
    for i in range(len(segs) - 2):
        if unquote(segs[i]) == plural and unquote(segs[i + 2]) == "proxy":
            rest = segs[i + 3:]
            return "/".join(segs[:i + 3]), ("/" + "/".join(rest)) if rest else ""
    raise errors.NotFound(message="the server could not find the requested resource")


def _port_number(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise errors.BadRequest(message=f'invalid port "{text}" for {what}')
    return int(text)


def _pod_target(ctx: ApiContext, handlers: Handlers, ns: str, pod_name: str, scheme: str, port: str,
                rest: str) -> Where:
    rt = ctx.catalog.lookup("", "v1", "pods")
    assert rt is not None
    pod = handlers.get(rt, ns, pod_name)
    if not port:
        declared = [p.get("containerPort") for c in (pod.get("spec") or {}).get("containers") or []
                    for p in c.get("ports") or [] if isinstance(p, dict) and p.get("containerPort")]
        port = str(declared[0]) if declared else "80"
    number = _port_number(port, f'pod "{pod_name}"')
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node:
        raise errors.ServiceUnavailable(message=f'pod "{pod_name}" does not have a host assigned')
    if not (pod.get("status") or {}).get("podIP"):
        raise errors.ServiceUnavailable(message=f'pod "{pod_name}" has no IP address yet')
    return Where(node, f"/podProxy/{quote(ns, safe='')}/{quote(pod_name, safe='')}/{scheme}/{number}{rest}")


def _service_target(ctx: ApiContext, handlers: Handlers, ns: str, name: str, scheme: str, port: str,
                    rest: str) -> Where:
    svc_rt = ctx.catalog.lookup("", "v1", "services")
    ep_rt = ctx.catalog.lookup("", "v1", "endpoints")
    assert svc_rt is not None and ep_rt is not None
    svc = handlers.get(svc_rt, ns, name)
    ports = (svc.get("spec") or {}).get("ports") or []
    port_name = port
    if port.isdigit():
        found = next((p for p in ports if str(p.get("port")) == port), None)
        if found is None:
            raise errors.ServiceUnavailable(message=f'no service port {port} found for service "{name}"')
        port_name = str(found.get("name") or "")
    elif not port and len(ports) == 1:
        port_name = str(ports[0].get("name") or "")
    endpoints = ctx.store.get(ep_rt.key(ns, name)) or {}
    choices: list[tuple[Obj, int]] = []
    for subset in endpoints.get("subsets") or []:
        for p in subset.get("ports") or []:
            if str(p.get("name") or "") == port_name:
                choices += [(a, int(p.get("port") or 0)) for a in subset.get("addresses") or []
                            if (a.get("targetRef") or {}).get("kind") == "Pod" and a.get("nodeName")]
    if not choices:
        raise errors.ServiceUnavailable(message=f'no endpoints available for service "{name}"')
    address, number = random.choice(choices)
    ref = address["targetRef"]
    pod_ns = str(ref.get("namespace") or ns)
    return Where(str(address["nodeName"]),
                 f"/podProxy/{quote(pod_ns, safe='')}/{quote(str(ref.get('name')), safe='')}/{scheme}/{number}{rest}")


def _node_target(ctx: ApiContext, node: str, port: str, rest: str) -> Where:
    ep = agentlink.node_endpoint(ctx, node, "")
    if port and port != str(ep.port):
        raise errors.BadRequest(message=f"pikube proxies to a node only on its agent's port {ep.port}, not {port}")
    return Where(node, rest or "/")


def handle(ctx: ApiContext, handlers: Handlers, rt: ResourceType, ns: str, name: str, environ: Obj,
           stopping: threading.Event) -> Response:
    scheme, target_name, port = split_scheme_name_port(name)
    prefix, rest = sub_path(environ, rt.plural)
    method = str(environ["REQUEST_METHOD"])
    query = str(environ.get("QUERY_STRING") or "")
    if not rest and method in ("GET", "HEAD"):
        return Response(b"", status=301, headers={"Location": prefix + "/" + (f"?{query}" if query else "")})
    upgrade = is_upgrade(environ)
    if rt.kind == "Pod":
        where = _pod_target(ctx, handlers, ns, target_name, scheme, port, rest)
    elif rt.kind == "Service":
        where = _service_target(ctx, handlers, ns, target_name, scheme, port, rest)
    else:
        where = _node_target(ctx, target_name, port, rest)
    body = b"" if upgrade else _request_body(environ, ctx.settings.max_body_bytes)
    headers = [(k, v) for k, v in _client_headers(environ) if k.lower() not in _HOP]
    headers.append(("X-Forwarded-Uri", str(environ.get("RAW_URI") or "")))
    if upgrade:
        headers += [("Connection", "Upgrade"), ("Upgrade", str(environ.get("HTTP_UPGRADE")))]
    else:
        headers.append(("Connection", "close"))
    ep = agentlink.node_endpoint(ctx, where.node, f'of {rt.kind.lower()} "{target_name}"')
    if not upgrade:
        return _forward(ctx, ep, method, where.agent_path + (f"?{query}" if query else ""), headers, body, rt,
                        target_name, prefix)
    with stream_slot(ctx, where.node):
        return _forward(ctx, ep, method, where.agent_path + (f"?{query}" if query else ""), headers, body, rt,
                        target_name, prefix, environ, stopping)


def _forward(ctx: ApiContext, ep: agentlink.AgentEndpoint, method: str, target: str, headers: list[tuple[str, str]],
             body: bytes, rt: ResourceType, target_name: str, prefix: str, upgrade_environ: Obj | None = None,
             stopping: threading.Event | None = None) -> Response:
    """Send the request through the agent; the answer streamed back, or after a `101` the relayed stream."""
    agent = agentlink.connect(ctx, ep, ctx.settings.agent_connect_timeout)
    try:
        agentlink.send_request(agent, method, target, ep, headers, body)
        head, first = agentlink.read_head(agent, ep, HEAD_TIMEOUT)
    except (OSError, ssl.SSLError) as exc:
        agent.close()
        raise errors.ServiceUnavailable(message=f'the agent of node "{ep.node}" at {ep.where} failed: {exc}') from exc
    except errors.ApiError:
        agent.close()
        raise
    if upgrade_environ is not None and head.code == 101 and not head.get(ERROR_HEADER):
        try:
            switch(upgrade_environ, agent, head, first, ctx.settings.stream_idle_timeout,
                   stopping or threading.Event(), ctx.settings.agent_connect_timeout,
                   f"{rt.plural}/{target_name}/proxy on node {ep.node}")
        finally:
            with contextlib.suppress(OSError):
                agent.close()
        return Response(b"", status=101)
    if head.get(ERROR_HEADER):
        text = agentlink.read_body(agent, head, first, READ_TIMEOUT, 4096).decode(errors="replace").strip()
        agent.close()
        cls = {400: errors.BadRequest, 404: errors.NotFound, 413: errors.RequestEntityTooLarge,
               504: errors.Timeout}.get(head.code, errors.ServiceUnavailable)
        raise cls(message=f"error trying to reach {rt.kind.lower()}: {text}")
    out_headers = []
    for k, v in head.headers:
        if k.lower() in _HOP:
            continue
        if k.lower() == "location" and v.startswith("/") and not v.startswith("//") and rt.kind != "Node":
            v = prefix + v
        out_headers.append((k, v))
    length = head.get("Content-Length")
    if length is not None and length.isdigit() and int(length) <= MAX_RESPONSE:
        out_headers.append(("Content-Length", length))
    out_headers.append((STREAM_HEADER, "1"))  # headers at once, and an end when the client leaves
    response = Response(_relay_body(agent, head, first, method), status=f"{head.code} {head.reason}".strip(),
                        headers=out_headers)
    response.call_on_close(agent.close)
    return response


def _client_headers(environ: Obj) -> list[tuple[str, str]]:
    out = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out.append((key[5:].replace("_", "-").title(), str(value)))
    if environ.get("CONTENT_TYPE"):
        out.append(("Content-Type", str(environ["CONTENT_TYPE"])))
    return out


def _request_body(environ: Obj, limit: int) -> bytes:
    length = str(environ.get("CONTENT_LENGTH") or "")
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
    if length.isdigit() and int(length) > limit:
        raise errors.RequestEntityTooLarge(message=f"the request body is larger than {limit} bytes")
    if not chunked and not (length.isdigit() and int(length) > 0):
        return b""
    data = environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise errors.RequestEntityTooLarge(message=f"the request body is larger than {limit} bytes")
    return bytes(data)


def _relay_body(agent: ssl.SSLSocket, head: agentlink.Head, first: bytes, method: str) -> Iterator[bytes]:
    deadline = time.monotonic() + MAX_TIME
    sent = 0
    try:
        for chunk in agentlink.body_chunks(agent, head, first, READ_TIMEOUT, method):
            sent += len(chunk)
            if sent > MAX_RESPONSE or time.monotonic() > deadline:
                return
            yield chunk
    except (OSError, ConnectionError):
        return
    finally:
        with contextlib.suppress(OSError):
            agent.close()
