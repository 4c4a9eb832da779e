"""`pikube master`: runs the API server, store, scheduler and controllers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from core.settings import MasterSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("master", help="run the API server")
    p.add_argument("--data-dir", type=Path, default=Path("/var/lib/pikube/master"))
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--advertise-address", default="",
                   help="address other boards use to reach this master (default: --bind, or 127.0.0.1)")
    p.add_argument("--tls-san", action="append", default=[], help="extra name or IP for the serving cert")
    p.add_argument("--web-port", type=int, default=8080, help="status page port (plain HTTP, read-only); 0 = off")
    p.add_argument("--web-bind", default="0.0.0.0", help="address the status page listens on")
    p.add_argument("--web-token", default="", help="access token the status page asks for (default: none)")
    p.add_argument("--board-node", default="",
                   help="Node name of the board this master runs on (labelled node-role.kubernetes.io/master)")
    p.add_argument("--api-address", default="", metavar="IP",
                   help="the masters' floating address: a free LAN address (outside --lb-pool) that a board announces "
                        "and forwards to a live master; in the serving certificate (every master gets the same)")
    p.add_argument("--lb-pool", action="append", default=[], metavar="RANGE",
                   help="LAN addresses for LoadBalancer services, announced by ARP from one board (repeatable; "
                        "192.168.1.240-192.168.1.250 or 192.168.1.240/28); default: the boards' own addresses")
    p.add_argument("--node-monitor-grace-seconds", type=float, default=40.0,
                   help="a board silent this long is NotReady (its pods are evicted later; its pool addresses "
                        "move at once)")
    p.add_argument("--streaming-connection-idle-timeout", type=_duration, default=4 * 3600.0, metavar="DURATION",
                   help="end an exec/attach/port-forward stream after this long without traffic (e.g. 4h, 90s)")
    p.add_argument("--max-streams-per-node", type=int, default=64,
                   help="exec/attach/port-forward streams at once to one board; beyond: 429")
    p.add_argument("--datastore-endpoint", default="", metavar="URLS",
                   help="keep the cluster's state in etcd at these client URLs (comma-separated, e.g. "
                        "https://10.0.0.2:2379,https://10.0.0.3:2379) instead of SQLite in the data dir")
    p.add_argument("--datastore-cafile", default="", help="CA of the etcd servers' certificates")
    p.add_argument("--datastore-certfile", default="", help="client certificate for etcd")
    p.add_argument("--datastore-keyfile", default="", help="client key for etcd")
    p.add_argument("--datastore-prefix", default="/pikube", help="the etcd key prefix (default /pikube)")
    p.add_argument("--datastore-timeout", type=_duration, default=10.0, metavar="DURATION",
                   help="how long a request waits for the etcd cluster before failing as having no quorum "
                        "(default 10s; on SD cards keep it above etcd's own election timeout)")
    p.add_argument("--disable-controllers", default="", metavar="NAMES",
                   help="controllers not to run here (comma-separated; `scheduler` too)")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=_duration, default=15.0, metavar="DURATION",
                   help="how often every HorizontalPodAutoscaler is evaluated (default 15s)")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=_duration, default=300.0,
                   metavar="DURATION", help="how long a scale-down waits for higher recommendations (default 5m; "
                   "an autoscaler's spec.behavior.scaleDown.stabilizationWindowSeconds overrides it)")
    p.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=0.1,
                   help="usage ratios this close to 1.0 change nothing (default 0.1)")
    p.add_argument("--service-account-issuer", default="https://kubernetes.default.svc.cluster.local",
                   help="the `iss` of service account tokens, and the audience the API accepts")
    p.add_argument("--service-account-max-token-expiration", type=_duration, default=24 * 3600.0,
                   metavar="DURATION", help="the longest token a TokenRequest gets (default 24h)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)


def settings_from(args: argparse.Namespace) -> MasterSettings:
    advertise = args.advertise_address or (args.bind if args.bind not in ("0.0.0.0", "::") else "127.0.0.1")
    names = tuple(s for s in args.tls_san if not _is_ip(s))
    ips = tuple(s for s in args.tls_san if _is_ip(s))
    return MasterSettings(data_dir=args.data_dir, bind=args.bind, port=args.port, hostnames=names,
                          addresses=ips, advertise_address=advertise, web_port=args.web_port, web_bind=args.web_bind,
                          web_token=args.web_token, board_node=args.board_node, lb_pool=tuple(args.lb_pool),
                          api_address=args.api_address,
                          node_monitor_grace_seconds=args.node_monitor_grace_seconds,
                          stream_idle_timeout=args.streaming_connection_idle_timeout,
                          max_streams_per_node=args.max_streams_per_node,
                          hpa_sync_seconds=args.horizontal_pod_autoscaler_sync_period,
                          hpa_downscale_stabilization_seconds=args.horizontal_pod_autoscaler_downscale_stabilization,
                          hpa_tolerance=args.horizontal_pod_autoscaler_tolerance,
                          datastore_endpoints=tuple(u.strip() for u in args.datastore_endpoint.split(",") if u.strip()),
                          datastore_cafile=args.datastore_cafile, datastore_certfile=args.datastore_certfile,
                          datastore_keyfile=args.datastore_keyfile, datastore_prefix=args.datastore_prefix,
                          datastore_timeout_seconds=args.datastore_timeout,
                          disabled_controllers=frozenset(n.strip() for n in args.disable_controllers.split(",")
                                                         if n.strip()),
                          service_account_issuer=args.service_account_issuer,
                          service_account_max_token_seconds=max(600, int(args.service_account_max_token_expiration)))


def _duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `4h` or Go's `4h0m0s`."""
    import re

    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or parts is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 4h, 15m, 90s)")
    h, m, sec = (float(g or 0) for g in parts.groups())
    seconds = h * 3600 + m * 60 + sec
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive, not {text!r}")
    return seconds


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _run(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port must be between 1 and 65535, not {args.port}")
    if not 0 <= args.web_port <= 65535 or args.web_port == args.port:
        raise CliError(f"--web-port must be 0 (off) or a free port other than --port, not {args.web_port}")
    endpoints = [u.strip() for u in args.datastore_endpoint.split(",") if u.strip()]
    for url in endpoints:
        if not url.startswith(("http://", "https://")):
            raise CliError(f"--datastore-endpoint takes etcd client URLs such as https://10.0.0.2:2379, not {url!r}")
    tls_files = [args.datastore_cafile, args.datastore_certfile, args.datastore_keyfile]
    if any(tls_files) and not all(tls_files):
        raise CliError("--datastore-cafile, --datastore-certfile and --datastore-keyfile go together")
    for path in filter(None, tls_files):
        if not Path(path).is_file():
            raise CliError(f"{path} does not exist")
    if not 0 <= args.horizontal_pod_autoscaler_tolerance < 1:
        raise CliError("--horizontal-pod-autoscaler-tolerance must be at least 0 and below 1, "
                       f"not {args.horizontal_pod_autoscaler_tolerance}")
    if args.node_monitor_grace_seconds < 1:
        raise CliError(f"--node-monitor-grace-seconds must be at least 1, not {args.node_monitor_grace_seconds}")
    settings = settings_from(args)
    try:
        pool = settings.lb_pool_addresses()
    except ValueError as exc:
        raise CliError(f"--lb-pool: {exc}") from None
    if args.api_address:
        import ipaddress

        try:
            floating = ipaddress.ip_address(args.api_address)
        except ValueError:
            raise CliError(f"--api-address must be an IP address, not {args.api_address!r}") from None
        if floating.version != 4 or floating in pool:
            raise CliError(f"--api-address {floating} must be an IPv4 address outside --lb-pool (the pool's addresses "
                           "go to LoadBalancer services)")
    from pikube.run.master import run

    try:
        run(settings)
    except OSError as exc:
        raise CliError(f"cannot start the master: {exc}") from exc
    return 0
