"""Entry points for `pikube`, `enable-master` and `enable-worker`.

Each subcommand lives in its own module with a `register(subparsers)` function
that declares its flags and sets `func`; heavy imports happen only inside the
chosen subcommand, so `pikube info` on a Pi does not load the API server.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core import __version__

# Modules under pikube.cli that contribute subcommands, in help order.
SUBCOMMAND_MODULES = ("enable", "token", "user", "lifecycle", "board", "master", "etcd", "agent", "firstboot",
                      "image", "flash", "provision", "dev")


class CliError(Exception):
    """A plain sentence for the user; the CLI prints it and exits 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pikube", description="pikube: a Kubernetes-compatible cluster for Raspberry Pi boards."
    )
    parser.add_argument("--version", action="version", version=f"pikube {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        module = importlib.import_module(f"pikube.cli.{name}")
        module.register(sub)
    return parser


def run(argv: Sequence[str] | None = None, prog: str = "pikube") -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        result = func(args)
    except CliError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def main() -> None:
    sys.exit(run())


def enable_master() -> None:
    """The `enable-master` script: `pikube enable-master` under its own name."""
    sys.exit(run(["enable-master", *sys.argv[1:]], prog="enable-master"))


def enable_worker() -> None:
    """The `enable-worker` script: `pikube enable-worker` under its own name."""
    sys.exit(run(["enable-worker", *sys.argv[1:]], prog="enable-worker"))
