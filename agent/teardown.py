"""Undoing what the agent made on a board, for `pikube disable` / `pikube reset` and for tests.

Stopping the agent leaves pods and the network running on purpose (a restarted
agent adopts them). These functions are the opposite, run with the agent
stopped: `remove_network` deletes the pod network and service proxy of the
board (pod veths, `pikube0`, `pikube.1`, pikube's routes, `table ip pikube`)
and the address allocations; `reset` first removes every container and volume
of this node from Docker, then the network. Both are safe to repeat and touch
nothing pikube did not make. The agent's data directory (credentials, pod
directories) is left for the caller to delete.
"""

from __future__ import annotations

import contextlib
import logging

from agent import proxy
from agent.network import SELF, Netns, teardown
from agent.runtime import labels as L
from agent.runtime.docker import DockerRuntime
from core.settings import AgentSettings

log = logging.getLogger(__name__)
IPAM_FILE = "ipam.json"


class ResetError(RuntimeError):
    """Part of a reset could not be done; the message says which (the rest was done)."""


def remove_network(settings: AgentSettings, netns: Netns = SELF) -> None:
    """Remove the board's pod network, service proxy and address allocations."""
    proxy.teardown(netns)
    teardown(netns)
    (settings.data_dir / IPAM_FILE).unlink(missing_ok=True)


def remove_containers(settings: AgentSettings) -> int:
    """Force-remove every container and volume Docker holds for this node; returns how many containers."""
    runtime = DockerRuntime(settings.docker_host, settings.node_name, timeout=30)
    try:
        rows = runtime.api.containers(all=True, filters={"label": [f"{L.NODE}={settings.node_name}"]})
        for row in rows:
            with contextlib.suppress(Exception):  # gone already
                runtime.api.remove_container(row["Id"], force=True, v=True)
        volumes = runtime.api.volumes(filters={"label": [f"{L.NODE}={settings.node_name}"]}) or {}
        for volume in volumes.get("Volumes") or []:
            with contextlib.suppress(Exception):
                runtime.api.remove_volume(volume["Name"], force=True)
        return len(rows)
    finally:
        runtime.close()


def reset(settings: AgentSettings, netns: Netns = SELF) -> None:
    """Remove this node's pods from Docker, then its network. Raises ResetError if Docker could not be reached
    (after removing the network all the same)."""
    problem = ""
    try:
        count = remove_containers(settings)
        log.info("removed %d containers of node %s", count, settings.node_name)
    except Exception as exc:
        problem = f"the containers of node {settings.node_name} could not be removed ({exc})"
    remove_network(settings, netns)
    if problem:
        raise ResetError(problem + "; the pod network was removed")
