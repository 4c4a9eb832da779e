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
    p.add_argument("--streaming-connection-idle-timeout", type=_duration, default=4 * 3600.0, metavar="DURATION",
                   help="end an exec/attach/port-forward stream after this long without traffic (e.g. 4h, 90s)")
    p.add_argument("--max-streams-per-node", type=int, default=64,
                   help="exec/attach/port-forward streams at once to one board; beyond: 429")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=_run)


def settings_from(args: argparse.Namespace) -> MasterSettings:
    advertise = args.advertise_address or (args.bind if args.bind not in ("0.0.0.0", "::") else "127.0.0.1")
    names = tuple(s for s in args.tls_san if not _is_ip(s))
    ips = tuple(s for s in args.tls_san if _is_ip(s))
    return MasterSettings(data_dir=args.data_dir, bind=args.bind, port=args.port, hostnames=names,
                          addresses=ips, advertise_address=advertise, web_port=args.web_port, web_bind=args.web_bind,
                          web_token=args.web_token, board_node=args.board_node,
                          stream_idle_timeout=args.streaming_connection_idle_timeout,
                          max_streams_per_node=args.max_streams_per_node)


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
    settings = settings_from(args)
    from pikube.run.master import run

    try:
        run(settings)
    except OSError as exc:
        raise CliError(f"cannot start the master: {exc}") from exc
    return 0
