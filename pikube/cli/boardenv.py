"""What the board commands (enable-*, disable, reset, token, info, doctor) take from their surroundings.

This is the one place that reads the environment for them (`DOCKER_HOST`,
`SUDO_USER`), asks whether systemd runs, and reaches into `master/` and
`agent/` (lazily, as the import contract allows only here) to build the
bootstrap's hooks: making join tokens, joining, undoing the pod network.
"""

from __future__ import annotations

import os
import pwd
import sys
from dataclasses import replace
from pathlib import Path

from core.settings import AgentSettings
from pikube.bootstrap.common import Hooks, Report, UserFile
from pikube.bootstrap.errors import BootstrapError
from pikube.bootstrap.init import Init, InitKind, Supervised, Systemd
from pikube.bootstrap.layout import Layout
from pikube.bootstrap.record import NodeRecord
from pikube.bootstrap.services import DEFAULT_DOCKER_HOST
from pikube.doctor.checks import Context, blocking, check_clock, run_checks
from pikube.doctor.host import RealHost

SYSTEMD_RUNNING = Path("/run/systemd/system")


def pikube_command() -> tuple[str, ...]:
    """How services run pikube: this interpreter (the venv's or the system's) with `-m pikube`."""
    return (sys.executable, "-m", "pikube")


def docker_host(flag: str) -> str:
    return flag or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def init_kind(flag: str | None) -> InitKind:
    if flag:
        return InitKind(flag)
    return InitKind.SYSTEMD if SYSTEMD_RUNNING.is_dir() else InitKind.NONE


def make_init(kind: InitKind, layout: Layout) -> Init:
    if kind is InitKind.SYSTEMD:
        return Systemd(layout.systemd_unit_dir)
    return Supervised(layout.supervised_units, layout.logs, pikube_command())


def invoking_user_kubeconfig() -> UserFile:
    """`~/.kube/config` of whoever ran sudo (SUDO_USER), else of the current user."""
    name = os.environ.get("SUDO_USER")
    if name and name != "root":
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            pass
        else:
            return UserFile(Path(entry.pw_dir) / ".kube" / "config", entry.pw_uid, entry.pw_gid)
    return UserFile(Path.home() / ".kube" / "config")


def is_root() -> bool:
    return os.geteuid() == 0


def doctor_context(layout: Layout, docker: str, backend: str = "host-gw") -> Context:
    return Context(data_dir=str(layout.data_dir), docker_host=docker, backend=backend)


# --- hooks into master/ and agent/ ---------------------------------------------------------------


def _join(agent_data: Path, server: str, node_name: str, token: str) -> None:
    from agent.credentials import CredentialsError, ensure_node_credentials

    try:
        ensure_node_credentials(agent_data, server, node_name, token)
    except CredentialsError as exc:
        raise BootstrapError(f"{str(exc).rstrip('.')}.") from None


def _agent_settings(layout: Layout, rec: NodeRecord | None) -> AgentSettings:
    if rec is None:  # only the data dir matters for removing the network
        return AgentSettings(server="", node_name="", data_dir=layout.agent_data)
    return AgentSettings(server=rec.server, node_name=rec.node_name, data_dir=layout.agent_data,
                         docker_host=rec.docker_host, pod_network="bridge", backend=rec.backend)


def remove_network(layout: Layout, rec: NodeRecord | None = None) -> None:
    """Remove this board's pod network and service rules (in the namespace this process runs in)."""
    from agent.teardown import remove_network as remove

    remove(_agent_settings(layout, rec))


def reset_agent(layout: Layout, rec: NodeRecord) -> None:
    """Remove the node's containers and volumes from Docker, and its network (the agent's own reset)."""
    from agent.teardown import ResetError, reset

    try:
        reset(_agent_settings(layout, rec))
    except ResetError as exc:
        raise BootstrapError(f"{str(exc).rstrip('.')}.") from None


def create_token(master_data: Path, ttl: float | None, description: str) -> str:
    from master.pki import pki_paths
    from master.tokens import TokenStore

    return TokenStore.for_pki(master_data, pki_paths(master_data)).create(ttl, description)


def token_exists(master_data: Path, token_id: str) -> bool:
    import time

    from master.pki import pki_paths
    from master.tokens import TokenStore

    now = time.time()
    return any(info.token_id == token_id and not info.expired(now)
               for info in TokenStore.for_pki(master_data, pki_paths(master_data)).list())


def hooks(ctx: Context, layout: Layout, report: Report) -> Hooks:
    def preflight(ca_pem: bytes | None) -> list[str]:
        if ca_pem is None:
            return blocking(run_checks(RealHost(), ctx))
        return blocking(run_checks(RealHost(), replace(ctx, cas=(ca_pem,)), [check_clock]))

    return Hooks(preflight=preflight, join=_join, teardown_network=lambda: remove_network(layout),
                 create_token=create_token, token_exists=token_exists, report=report)
