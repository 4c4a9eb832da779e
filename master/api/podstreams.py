"""`pods/NAME/exec`, `attach` and `portforward`: check, then relay the upgrade to the agent of the pod's board.

kubectl (SPDY/3.1 by POST, or WebSocket by GET) and the Python client
(WebSocket) ask the master to switch protocols; the master does not speak
those protocols. As kube-apiserver's upgrade-aware proxy does, it checks the
request here, where it can answer with a clear `Status` (the pod, its phase,
its container, its node, the board's stream cap), then sends the very same
request line's method and query with the handshake headers to the agent —
`/exec/NS/POD/CONTAINER?…`, `/attach/NS/POD/CONTAINER?…`,
`/portforward/NS/POD?…` on the agent's HTTPS port, as the master's client
certificate (master/api/agentlink.py). A non-101 answer goes back to the
client as it is (status, the headers that matter, body: a Status the agent
wrote, or `X-Accepted-Stream-Protocol-Versions` on a failed negotiation); a
101 goes back verbatim and the request's thread becomes the stream's relay
(core/relay.py) until both ends are done.

Authorisation is `create` on `pods/exec`, `pods/attach` and `pods/portforward`
whatever the method (a WebSocket handshake is a GET: authorising it as `get`
would let a read-only identity run commands, the hole Kubernetes 1.35 closed
with AuthorizePodWebsocketUpgradeCreatePermission). It happens before any of
this, in routes.dispatch, and authentication before that: an unauthenticated
client never reaches an agent.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote

from flask import Response

from core import errors, relay
from core.httpserver import HIJACK_KEY, Hijacked
from master.api import agentlink
from master.registry.context import ApiContext
from master.registry.resource import ResourceType
from master.registry.verbs import Handlers

log = logging.getLogger(__name__)
Obj = dict[str, Any]
STREAMING = ("exec", "attach", "portforward")
# The handshake headers the agent needs, and only them (the client's credentials stay on the master).
RELAYED = ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol",
           "Sec-WebSocket-Extensions")
PROTOCOL_HEADER = "X-Stream-Protocol-Version"
# Headers of a refusal that a client acts on.
PASSED_BACK = ("Content-Type", "X-Accepted-Stream-Protocol-Versions", "Retry-After", "Warning", "Sec-WebSocket-Version")
HEAD_TIMEOUT = 30.0  # the agent's answer to the handshake (it looks up the container first)
REFUSAL_LIMIT = 64 * 1024  # a refusal's body
# kubectl's own wording ("cannot exec into a container in a completed pod; current phase is Succeeded").
_VERB = {"exec": "exec into", "attach": "attach to", "portforward": "forward ports to"}


def is_upgrade(environ: Obj) -> bool:
    connection = {t.strip().lower() for t in str(environ.get("HTTP_CONNECTION") or "").split(",")}
    return "upgrade" in connection and bool(environ.get("HTTP_UPGRADE"))


def container_for(pod: Obj, name: str, requested: str) -> str:
    """The container a stream is for: the one asked for (it must exist), else the pod's default container (the
    `kubectl.kubernetes.io/default-container` annotation), else its first container."""
    spec = pod.get("spec") or {}
    every = [str(c.get("name")) for key in ("containers", "initContainers", "ephemeralContainers")
             for c in spec.get(key) or [] if isinstance(c, dict)]
    if requested:
        if requested not in every:
            raise errors.BadRequest(message=f"container {requested} is not valid for pod {name}")
        return requested
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if default and default in every:
        return str(default)
    containers = [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]
    if not containers:
        raise errors.BadRequest(message=f"a container name must be specified for pod {name}")
    return containers[0]


def check_pod(pod: Obj, name: str, sub: str) -> str:
    """The pod's node, once it is one a stream can go into; a 400 saying why not otherwise."""
    phase = str((pod.get("status") or {}).get("phase") or "Pending")
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node:
        raise errors.BadRequest(message=f"pod {name} does not have a host assigned")
    if phase in ("Succeeded", "Failed"):
        what = "a completed pod" if sub == "portforward" else "a container in a completed pod"
        raise errors.BadRequest(message=f"cannot {_VERB[sub]} {what}; current phase is {phase}")
    if phase != "Running":
        raise errors.BadRequest(message=f"pod {name} is not running yet (phase {phase}): cannot {_VERB[sub]} "
                                        "it until it runs")
    return node


def agent_target(sub: str, ns: str, name: str, container: str, query: str) -> str:
    path = f"/{sub}/{quote(ns, safe='')}/{quote(name, safe='')}"
    if sub != "portforward":
        path += f"/{quote(container, safe='')}"
    return path + (f"?{query}" if query else "")


def relayed_headers(environ: Obj) -> list[tuple[str, str]]:
    out = []
    for name in RELAYED:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
        if value:
            out.append((name, str(value)))
    # One header per offered version (WSGI joined the client's repeated headers with commas).
    for version in str(environ.get("HTTP_X_STREAM_PROTOCOL_VERSION") or "").split(","):
        if version.strip():
            out.append((PROTOCOL_HEADER, version.strip()))
    return out


def handle(ctx: ApiContext, handlers: Handlers, rt: ResourceType, ns: str, name: str, sub: str, environ: Obj,
           stopping: threading.Event) -> Response:
    if not is_upgrade(environ):
        raise errors.BadRequest(message="Upgrade request required")
    pod = handlers.get(rt, ns, name)
    node = check_pod(pod, name, sub)
    container = ""
    if sub != "portforward":
        requested = (parse_qs(str(environ.get("QUERY_STRING") or "")).get("container") or [""])[0]
        container = container_for(pod, name, requested)
    ep = agentlink.node_endpoint(ctx, node, f'of pod "{name}"')
    with stream_slot(ctx, node):
        target = agent_target(sub, ns, name, container, str(environ.get("QUERY_STRING") or ""))
        return _relay(ctx, ep, environ, target, stopping)


@contextlib.contextmanager
def stream_slot(ctx: ApiContext, node: str) -> Iterator[None]:
    """One of the node's `max_streams_per_node` stream slots for the block; 429 when none is free."""
    cap = ctx.settings.max_streams_per_node
    if not ctx.stream_slots.acquire(node, cap):
        raise errors.TooManyRequests(message=f'too many streams to node "{node}" at once ({cap}); try again later',
                                     retry_after=1)
    try:
        yield
    finally:
        ctx.stream_slots.release(node)


def switch(environ: Obj, upstream: ssl.SSLSocket, head: agentlink.Head, first: bytes, idle_timeout: float,
           stopping: threading.Event, write_timeout: float, what: str) -> None:
    """After an upstream `101`: take the client's connection over, give it the upstream's head verbatim, and
    relay both ways until the stream ends (the caller closes `upstream`)."""
    hijack = environ.get(HIJACK_KEY)
    if hijack is None:  # not under core.httpserver (Flask's test client): nothing to relay on
        raise errors.InternalError(message="this server cannot switch protocols")
    taken: Hijacked = hijack()
    client = taken.sock
    try:
        client.settimeout(write_timeout)
        client.sendall(head.raw)
        ending = relay.relay(client, taken.buffered, upstream, first, idle_timeout, stopping)
        log.debug("stream %s ended: %s", what, ending.value)
    except OSError:
        pass


def _relay(ctx: ApiContext, ep: agentlink.AgentEndpoint, environ: Obj, target: str,
           stopping: threading.Event) -> Response:
    agent = agentlink.connect(ctx, ep, ctx.settings.agent_connect_timeout)
    try:
        try:
            agentlink.send_request(agent, str(environ["REQUEST_METHOD"]), target, ep, relayed_headers(environ))
        except (OSError, ssl.SSLError) as exc:
            raise errors.ServiceUnavailable(message=f'the agent of node "{ep.node}" at {ep.where} failed: '
                                                    f"{exc}") from exc
        head, first = agentlink.read_head(agent, ep, HEAD_TIMEOUT)
        if head.code != 101:
            body = agentlink.read_body(agent, head, first, HEAD_TIMEOUT, REFUSAL_LIMIT)
            headers = [(k, v) for k, v in head.headers if k.title() in PASSED_BACK]
            return Response(body, status=f"{head.code} {head.reason}".strip(), headers=headers)
        switch(environ, agent, head, first, ctx.settings.stream_idle_timeout, stopping,
               ctx.settings.agent_connect_timeout, f"{target.split('?')[0]} on node {ep.node}")
        return Response(b"", status=101)
    finally:
        with contextlib.suppress(OSError):
            agent.close()
