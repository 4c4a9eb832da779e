"""Stopping the board's pod containers for `pikube disable` (the agent's own reset removes them).

The agent labels every container it makes with `pikube.io/node=<node name>`
(docs/agent.md), so other containers on the engine, and other agents
sharing it, are never touched. Stopped, not removed: `disable` keeps data.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core import wellknown

NODE_LABEL = wellknown.NODE_LABEL


def stop(docker_host: str, node_name: str) -> int:
    """Stop the node's running containers (in parallel, 10 s grace); how many were running."""
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=60)
    try:
        rows = client.api.containers(filters={"label": [f"{NODE_LABEL}={node_name}"]})
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda row: _quietly(client.api.stop, row["Id"], timeout=10), rows))
        return len(rows)
    finally:
        client.close()


def _quietly(func: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):  # gone meanwhile, or already stopped
        func(*args, **kwargs)
