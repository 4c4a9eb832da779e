"""`enable-worker`: join this board to a master and run its pods.

Order matters: root and the token's shape are checked first, then the
doctor's preflight, then the master's CA is fetched and pinned against the
token's hash (nothing secret is sent to a master that fails that), the clock
is checked against the CA, and only then is the secret traded for this node's
credentials. Only after a successful join is anything installed, and if the
node does not become Ready everything made is removed again, so a failed
enable-worker leaves the board as it found it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from core import errors, jointoken
from core.kubeconfig import KubeConfig, read_kubeconfig
from pikube.bootstrap import api, record
from pikube.bootstrap.common import Hooks, check_preflight, missing_dirs, undo, wait_ready
from pikube.bootstrap.errors import BootstrapError, JoinRefused, NotRoot
from pikube.bootstrap.init import Init
from pikube.bootstrap.joinerrors import explain
from pikube.bootstrap.layout import AGENT_UNIT, Layout
from pikube.bootstrap.record import NodeRecord, Role
from pikube.bootstrap.services import DEFAULT_DOCKER_HOST, AgentFlags, agent_unit

DEFAULT_BACKEND = "host-gw"


@dataclass(frozen=True)
class WorkerSetup:
    """enable-worker's settings, parsed once by the CLI."""

    layout: Layout
    master: str
    token: str
    node_name: str
    pikube: tuple[str, ...]
    is_root: bool
    docker_host: str = DEFAULT_DOCKER_HOST
    timeout: float = 90.0

    @property
    def server(self) -> str:
        host, port = jointoken.split_server(self.master)
        return f"https://{host}:{port}"


@dataclass(frozen=True)
class Joined:
    node_name: str
    server: str
    backend: str
    changed: bool
    # From enable-worker starting to the node Ready.
    seconds: float


def _server(setup: WorkerSetup) -> str:
    try:
        return setup.server
    except ValueError as exc:
        raise BootstrapError(f"{setup.master!r} is not a master address: {str(exc).rstrip('.')}.") from None


def _already(existing: NodeRecord, setup: WorkerSetup, server: str) -> None:
    if existing.role is Role.MASTER:
        raise BootstrapError("this board is the cluster's master; a master board already runs pods, "
                             "so it needs no enable-worker.")
    if existing.server != server or existing.node_name != setup.node_name:
        raise BootstrapError(f"this board already joined the master at {existing.server} as {existing.node_name}; "
                             "run `sudo pikube reset` first to join another.")


def enable_worker(setup: WorkerSetup, init: Init, hooks: Hooks,
                  pin: Callable[[str, str], bytes] = jointoken.fetch_and_pin_ca) -> Joined:
    """Join the master named in `setup` (or report that this board already has); raises BootstrapError."""
    started = time.monotonic()
    if not setup.is_root:
        raise NotRoot("enable-worker must run as root (it installs a system service): run it with sudo.")
    server = _server(setup)
    lay = setup.layout
    existing = record.load(lay.record)
    if existing is not None:
        _already(existing, setup, server)
        if init.active(AGENT_UNIT) and lay.node_kubeconfig.exists():
            hooks.report(f"this board already joined {server} as {existing.node_name}; nothing changed")
            return Joined(existing.node_name, server, existing.backend, False, 0.0)
    try:
        token = jointoken.parse(setup.token)
    except ValueError as exc:
        raise JoinRefused(f"the join token is malformed: {str(exc).rstrip('.')}.") from None
    check_preflight(hooks)
    made_dirs = missing_dirs(lay) if existing is None else []
    made_files = [lay.record]
    try:
        if not lay.node_kubeconfig.exists():
            try:
                ca_pem = pin(server, token.ca_hash)
            except jointoken.JoinError as exc:
                raise explain(exc, server, setup.node_name) from None
            check_preflight(hooks, ca_pem)
            hooks.report(f"the master's CA matches the token; joining as {setup.node_name}")
            try:
                hooks.join(lay.agent_data, server, setup.node_name, setup.token)
            except (jointoken.JoinError, errors.ApiError) as exc:
                raise explain(exc, server, setup.node_name) from None
        node_cfg = read_kubeconfig(lay.node_kubeconfig)
        backend = (existing.backend if existing else None) or _backend(node_cfg)
        flags = AgentFlags(server=server, node_name=setup.node_name, docker_host=setup.docker_host, backend=backend)
        if init.install(agent_unit(setup.pikube, lay, flags)) or not init.active(AGENT_UNIT):
            init.start(AGENT_UNIT)
        hooks.report(f"{AGENT_UNIT} installed and running; waiting for node {setup.node_name} to be Ready")
        wait_ready(init, AGENT_UNIT, lay.node_kubeconfig, setup.node_name, setup.timeout)
        record.save(lay.record, NodeRecord(
            role=Role.WORKER, node_name=setup.node_name, server=server, backend=backend, init=init.kind,
            data_dir=str(lay.data_dir), docker_host=setup.docker_host))
    except BaseException:
        if existing is None:
            hooks.report("enable-worker failed; removing what it made")
            undo(init, hooks, made_dirs, made_files)
        raise
    return Joined(setup.node_name, server, backend, True, time.monotonic() - started)


def _backend(cfg: KubeConfig) -> str:
    try:
        return api.cluster_backend(cfg) or DEFAULT_BACKEND
    except (api.Unreachable, errors.ApiError):
        return DEFAULT_BACKEND
