"""The command lines of `pikube-master.service` and `pikube-agent.service`, from what the bootstrap knows.

Every flag comes from enable-master/enable-worker's settings; nothing secret
goes into a unit file (they are world-readable): the agent joins before its
unit is installed, so its unit carries no token.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.wellknown import BOARD_ROLE_LABEL
from pikube.bootstrap.api import BACKEND_LABEL
from pikube.bootstrap.layout import AGENT_UNIT, MASTER_UNIT, Layout
from pikube.bootstrap.units import Unit

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
WORKER_ROLE_LABEL = f"{BOARD_ROLE_LABEL}=worker"  # the master adds node-role.kubernetes.io/worker


@dataclass(frozen=True)
class AgentFlags:
    """What the agent unit of a board runs with."""

    server: str
    node_name: str
    docker_host: str
    backend: str
    master_board: bool = False
    node_ip: str = ""


def master_unit(pikube: tuple[str, ...], layout: Layout, advertise: str, port: int, web_port: int,
                board_node: str, lb_pool: tuple[str, ...] = ()) -> Unit:
    """`board_node`: the master board's Node name, which the master (not the board) gives its role labels;
    `lb_pool`: LoadBalancer address ranges (none: the boards' own addresses)."""
    pool = tuple(flag for text in lb_pool for flag in ("--lb-pool", text))
    argv = (*pikube, "master", "--data-dir", str(layout.master_data), "--bind", "0.0.0.0", "--port", str(port),
            "--advertise-address", advertise, "--web-port", str(web_port), "--board-node", board_node, *pool)
    # Not ordered after Docker: only the agent runs containers, and on a slow board Docker's start is
    # seconds the master's own start need not wait for.
    return Unit(name=MASTER_UNIT, description="pikube master (API server, store, scheduler, controllers)",
                exec_start=argv, after=("network-online.target",))


def agent_unit(pikube: tuple[str, ...], layout: Layout, flags: AgentFlags) -> Unit:
    argv = [*pikube, "agent", "--server", flags.server, "--node-name", flags.node_name,
            "--data-dir", str(layout.agent_data), "--docker-host", flags.docker_host, "--pod-network", "bridge",
            "--backend", flags.backend]
    if flags.node_ip:
        argv += ["--node-ip", flags.node_ip]
    if flags.master_board:
        # The master board announces the cluster's backend; joining boards read it from its Node.
        argv += ["--master-board", "--node-label", f"{BACKEND_LABEL}={flags.backend}"]
    else:
        argv += ["--node-label", WORKER_ROLE_LABEL]
    after = ("docker.service", "network-online.target", *((MASTER_UNIT,) if flags.master_board else ()))
    return Unit(name=AGENT_UNIT, description="pikube node agent (pods in Docker, pod network, services)",
                exec_start=tuple(argv), after=after)
