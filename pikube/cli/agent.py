"""`pikube agent`: the node agent (kubelet, pod network hook, log endpoint) of one board."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.settings import AgentSettings
from pikube.bootstrap.layout import CONFIG_DIR
from pikube.cli import boardfile

RESOLVED_CONF = Path("/run/systemd/resolve/resolv.conf")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("agent", help="run the node agent (pods in Docker)")
    p.add_argument("--server", default="", help="the master, https://HOST:PORT (default: $PIKUBE_MASTER, else "
                                                "master: in the configuration file)")
    p.add_argument("--token", default="", help="join token, only needed until the node has credentials "
                                               "(default: $PIKUBE_TOKEN, else token: in the configuration file)")
    p.add_argument("--node-name", default="", help="this board's node name (default: $PIKUBE_NODE_NAME, else "
                                                   "hostname: in the configuration file, else the host name)")
    p.add_argument("--config", type=Path, default=None,
                   help=f"the board's configuration file (default: $PIKUBE_CONFIG, else "
                        f"{CONFIG_DIR / boardfile.CONFIG_NAME} if it exists); flags and PIKUBE_* win over it")
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
    p.add_argument("--cluster-dns", default="10.96.0.10",
                   help="with --pod-network bridge: the kube-dns Service's address, answered by this agent "
                        "(\"\" = no cluster DNS; pods get the node's resolv.conf)")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--resolv-conf", type=Path, default=None,
                   help="the node's resolver configuration: upstream servers for names outside the cluster, "
                        "and what dnsPolicy Default pods get (default: /etc/resolv.conf, or systemd-resolved's "
                        f"{RESOLVED_CONF} when /etc/resolv.conf names only loopback servers)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--local-path-dir", type=Path, default=None,
                   help="where volumes of the local-path StorageClass live on this board (default: DATA/storage; "
                        "e.g. a USB disk's mount point)")
    p.add_argument("--streaming-connection-idle-timeout", default="4h", metavar="DURATION",
                   help="end an exec/attach/port-forward stream with no data either way for this long "
                        "(Go duration: 4h, 30m, 1h30m0s, 90s; as the kubelet's flag)")
    p.add_argument("--max-streams", type=int, default=32,
                   help="concurrent exec/attach/port-forward streams on this board (beyond: 429)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--metrics-interval", type=float, default=15.0,
                   help="seconds between resource usage samples for kubectl top and autoscaling (0 = off)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)


def default_resolv_conf(etc: Path = Path("/etc/resolv.conf"), resolved: Path = RESOLVED_CONF) -> Path:
    """/etc/resolv.conf, unless it names only loopback servers (systemd-resolved's 127.0.0.53, which a pod
    cannot reach) and resolved's list of the real ones exists: then that, as kubeadm chooses for the kubelet."""
    try:
        servers = [line.split()[1] for line in etc.read_text().splitlines()
                   if len(line.split()) >= 2 and line.split()[0] == "nameserver"]
    except OSError:
        return etc
    if servers and all(s.startswith("127.") for s in servers) and resolved.exists():
        return resolved
    return etc


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> AgentSettings:
    """Flags, then PIKUBE_* in `env` (default: the process's), then the configuration file, then defaults."""
    from pikube.cli.main import CliError

    try:
        layers = boardfile.load(args.config, CONFIG_DIR / boardfile.CONFIG_NAME, env)
    except boardfile.BoardFileError as exc:
        if not (args.server and args.node_name):
            raise CliError(str(exc)) from None
        # The unit enable-* wrote gives every value it needs: a typo in the file must not stop a running node.
        print(f"pikube agent: ignoring the configuration file: {exc}", file=sys.stderr, flush=True)
        layers = boardfile.Layers(env=dict(os.environ if env is None else env))
    server = layers.server_url(args.server)
    if not server:
        raise CliError(f"give the master with --server https://HOST:PORT (or set {boardfile.ENV_MASTER}, or "
                       f"master: in {CONFIG_DIR / boardfile.CONFIG_NAME}).")
    node_name = layers.node_name(args.node_name, socket.gethostname().split(".")[0].lower())
    labels = []
    for item in args.node_label:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise CliError(f"--node-label takes KEY=VALUE, not {item!r}")
        labels.append((key, value))
    if not 1 <= args.log_port <= 65535:
        raise CliError(f"--log-port must be between 1 and 65535, not {args.log_port}")
    if args.metrics_interval != 0 and not 1 <= args.metrics_interval <= 300:
        raise CliError(f"--metrics-interval must be 0 (off) or 1 to 300 seconds, not {args.metrics_interval:g}")
    if args.cluster_dns:
        try:
            ipaddress.IPv4Address(args.cluster_dns)
        except ValueError:
            raise CliError(f"--cluster-dns takes an IPv4 address (or \"\"), not {args.cluster_dns!r}") from None
    idle = go_duration(args.streaming_connection_idle_timeout)
    if idle is None or idle <= 0:
        raise CliError(f"--streaming-connection-idle-timeout takes a duration such as 4h or 30m, "
                       f"not {args.streaming_connection_idle_timeout!r}")
    if args.max_streams < 1:
        raise CliError(f"--max-streams must be at least 1, not {args.max_streams}")
    return AgentSettings(server=server, node_name=node_name, data_dir=args.data_dir, token=layers.token(args.token),
                         docker_host=args.docker_host, master_board=args.master_board, node_ip=args.node_ip,
                         node_labels=tuple(labels), log_bind=args.log_bind, log_port=args.log_port,
                         pause_image=args.pause_image, pod_network=args.pod_network, backend=args.backend,
                         max_pods=args.max_pods, workers=args.workers, cluster_dns=args.cluster_dns,
                         cluster_domain=args.cluster_domain.strip(".").lower(),
                         resolv_conf=args.resolv_conf or default_resolv_conf(),
                         metrics_interval_seconds=args.metrics_interval, streaming_idle_timeout_seconds=idle,
                         max_streams=args.max_streams, local_path_dir=args.local_path_dir)


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration ("4h0m0s", "30m", "1.5h", "90s"; a bare number is seconds), None if not one."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * units[u] for n, u in parts)


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
