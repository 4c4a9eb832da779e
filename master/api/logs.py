"""`pods/NAME/log`: the master proxies container logs from the agent of the pod's node."""

from __future__ import annotations

from typing import Any

from flask import Response

from master.api.context import ApiContext
from master.api.handlers import Handlers
from master.api.resource import ResourceType
from pikube import errors


def proxy(ctx: ApiContext, handlers: Handlers, rt: ResourceType, ns: str, name: str,
          args: Any) -> Response:
    pod = handlers.get(rt, ns, name)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise errors.BadRequest(message=f'pod "{name}" is not yet scheduled to a node: no logs to show')
    raise errors.ServiceUnavailable(message=f'cannot fetch logs of pod "{name}" from node "{node}": the node '
                                            "agent's log endpoint is not available yet")
