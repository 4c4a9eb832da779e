"""`pikube agent`: the node agent (kubelet, pod network hook, log endpoint) of one board."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from core.settings import AgentSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("agent", help="run the node agent (pods in Docker)")
    p.add_argument("--server", required=True, help="the master, https://HOST:PORT")
    p.add_argument("--token", default="", help="join token (only needed until the node has credentials)")
    p.add_argument("--node-name", required=True, help="this board's node name")
    p.add_argument("--data-dir", type=Path, default=Path("/var/lib/pikube/agent"))
    p.add_argument("--docker-host", default="unix:///var/run/docker.sock")
    p.add_argument("--master-board", action="store_true", help="label the node as the master board")
    p.add_argument("--node-ip", default="", help="address to report (default: the one routing to the master)")
    p.add_argument("--node-label", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--log-bind", default="0.0.0.0")
    p.add_argument("--log-port", type=int, default=10250, help="HTTPS port of the log endpoint")
    p.add_argument("--pause-image", default="")
    p.add_argument("--pod-network", choices=["none", "bridge"], default="none",
                   help="none: pods have loopback only; bridge: pod network, service proxy, egress masquerade")
    p.add_argument("--backend", choices=["host-gw", "vxlan"], default="host-gw",
                   help="with --pod-network bridge: routes between boards (host-gw) or a vxlan overlay; "
                        "the same on every board of a cluster")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)


def settings_from(args: argparse.Namespace) -> AgentSettings:
    from pikube.cli.main import CliError

    labels = []
    for item in args.node_label:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CliError(f"--node-label takes KEY=VALUE, not {item!r}")
        labels.append((key, value))
    if not 1 <= args.log_port <= 65535:
        raise CliError(f"--log-port must be between 1 and 65535, not {args.log_port}")
    return AgentSettings(server=args.server, node_name=args.node_name, data_dir=args.data_dir, token=args.token,
                         docker_host=args.docker_host, master_board=args.master_board, node_ip=args.node_ip,
                         node_labels=tuple(labels), log_bind=args.log_bind, log_port=args.log_port,
                         pause_image=args.pause_image, pod_network=args.pod_network, backend=args.backend,
                         max_pods=args.max_pods, workers=args.workers)


def _run(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    # The Docker SDK imports paramiko (and with it cryptography, ~15 MB) only to offer ssh:// hosts, which
    # the agent never uses; an import that fails keeps the agent inside its memory budget.
    sys.modules.setdefault("paramiko", None)  # type: ignore[arg-type]
    from agent import leanimport

    leanimport.install()  # pyroute2 without the netlink families the agent never uses (~5 MB)
    from agent.main import AgentError, run

    try:
        run(settings)
    except AgentError as exc:
        raise CliError(str(exc)) from exc
    return 0
