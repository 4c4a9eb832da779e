"""The command lines of pikube's services (master, agent, etcd), from what the bootstrap knows.

Every flag comes from enable-master/enable-worker's settings; nothing secret
goes into a unit file (they are world-readable): the agent joins before its
unit is installed, so its unit carries no token.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.wellknown import BOARD_ROLE_LABEL
from pikube.bootstrap.api import BACKEND_LABEL
from pikube.bootstrap.layout import AGENT_UNIT, ETCD_UNIT, MASTER_UNIT, Layout
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


# The board's own etcd member, as its master reaches it: loopback, always covered by the member's certificate.
LOCAL_ETCD = "https://127.0.0.1:2379"


def master_unit(pikube: tuple[str, ...], layout: Layout, advertise: str, port: int, web_port: int,
                board_node: str, lb_pool: tuple[str, ...] = (), etcd_endpoints: tuple[str, ...] = (),
                api_address: str = "") -> Unit:
    """`board_node`: the master board's Node name, which the master (not the board) gives its role labels;
    `lb_pool`: LoadBalancer address ranges (none: the boards' own addresses); `etcd_endpoints`: keep the
    cluster's state in etcd at these client URLs (with the etcd CA's client certificate), not in SQLite;
    `api_address`: the masters' floating address."""
    pool = tuple(flag for text in lb_pool for flag in ("--lb-pool", text))
    argv = (*pikube, "master", "--data-dir", str(layout.master_data), "--bind", "0.0.0.0", "--port", str(port),
            "--advertise-address", advertise, "--web-port", str(web_port), "--board-node", board_node, *pool)
    if api_address:
        argv += ("--api-address", api_address)
    after: tuple[str, ...] = ("network-online.target",)
    if etcd_endpoints:
        pki = layout.master_data / "pki" / "etcd"
        argv += ("--datastore-endpoint", ",".join(etcd_endpoints), "--datastore-cafile", str(pki / "ca.crt"),
                 "--datastore-certfile", str(pki / "apiserver-etcd-client.crt"),
                 "--datastore-keyfile", str(pki / "apiserver-etcd-client.key"))
        after += (ETCD_UNIT,)
    # Not ordered after Docker: only the agent runs containers, and on a slow board Docker's start is
    # seconds the master's own start need not wait for.
    return Unit(name=MASTER_UNIT, description="pikube master (API server, store, scheduler, controllers)",
                exec_start=argv, after=after)


def etcd_unit(pikube: tuple[str, ...], layout: Layout, name: str, advertise: str, initial_cluster: str = "",
              existing: bool = False) -> Unit:
    """The board's etcd member (`pikube etcd` makes its certificates, then becomes etcd)."""
    argv = (*pikube, "etcd", "--name", name, "--advertise-address", advertise,
            "--master-data", str(layout.master_data), "--data-dir", str(layout.etcd_data))
    if initial_cluster:
        argv += ("--initial-cluster", initial_cluster)
    if existing:
        argv += ("--initial-cluster-state", "existing")
    # etcd is Go: glibc's arena setting is of no use to it, and it must stop cleanly (it fsyncs its WAL).
    return Unit(name=ETCD_UNIT, description="pikube etcd member (the cluster's store, shared by its masters)",
                exec_start=argv, after=("network-online.target",), environment=())


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
