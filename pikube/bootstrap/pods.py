"""The board's pod containers in Docker: stopped by `pikube disable`, removed by `pikube reset`.

The agent labels every container and tmpfs volume it makes with
`pikube.io/node=<node name>` (docs/agent.md), so other containers on the
engine, and other agents sharing it, are never touched.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

NODE_LABEL = "pikube.io/node"


def _client(docker_host: str) -> Any:
    import docker

    return docker.DockerClient(base_url=docker_host, timeout=60)


def _containers(client: Any, node_name: str, all: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.api.containers(all=all, filters={"label": [f"{NODE_LABEL}={node_name}"]})
    return rows


def stop(docker_host: str, node_name: str) -> int:
    """Stop the node's running containers (in parallel, 10 s grace); how many were running."""
    client = _client(docker_host)
    try:
        rows = _containers(client, node_name, all=False)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda row: _quietly(client.api.stop, row["Id"], timeout=10), rows))
        return len(rows)
    finally:
        client.close()


def remove(docker_host: str, node_name: str) -> int:
    """Remove the node's containers and volumes; how many containers there were."""
    client = _client(docker_host)
    try:
        rows = _containers(client, node_name, all=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda row: _quietly(client.api.remove_container, row["Id"], force=True, v=True), rows))
        volumes = (client.api.volumes(filters={"label": [f"{NODE_LABEL}={node_name}"]}) or {}).get("Volumes") or []
        for vol in volumes:
            _quietly(client.api.remove_volume, vol["Name"], force=True)
        return len(rows)
    finally:
        client.close()


def _quietly(func: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):  # gone meanwhile, or already stopped
        func(*args, **kwargs)
