"""`pikube master`: runs the API server, store, scheduler and controllers."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("master", help="run the API server")
    p.add_argument("--data-dir", default="/var/lib/pikube/master")
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, default=6443)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError

    raise CliError("the API server is not built yet (issue 3)")
