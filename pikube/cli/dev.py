"""`pikube dev`: a whole cluster on one Linux machine (boards are network namespaces).

This module only declares flags and prints; the work is in `pikube.dev.cluster`,
which tests and benchmarks call directly. The environment is read here, once
(`DOCKER_HOST`), and passed down in `DevSettings`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from pikube.dev.cluster import Cluster

P = ParamSpec("P")
T = TypeVar("T")

USAGE_EXEC = "pikube dev exec BOARD --state-dir DIR -- CMD [ARG...]"


def register(sub: Any) -> None:
    dev: argparse.ArgumentParser = sub.add_parser(
        "dev",
        help="local cluster for development",
        description="A local cluster: each board a network namespace.",
    )
    verbs = dev.add_subparsers(dest="dev_command", metavar="VERB")
    dev.set_defaults(func=lambda _args: _help(dev))

    up = verbs.add_parser("up", help="bring up a whole cluster: engine, images, boards, master and workers")
    up.add_argument("--workers", type=int, default=2, help="worker boards besides the master (default 2)")
    up.add_argument("--masters", type=int, default=1,
                    help="master boards (default 1, on SQLite); 3 or 5 keep the cluster in etcd, one member on each")
    up.add_argument("--backend", choices=("host-gw", "vxlan"), default="host-gw",
                    help="pod network between boards (default host-gw)")
    _state_dir(up)
    up.set_defaults(func=_up)

    down = verbs.add_parser("down", help="remove everything `dev up` made")
    _state_dir(down)
    down.set_defaults(func=_down)

    ls = verbs.add_parser("ls", help="list boards, namespaces and addresses")
    _state_dir(ls)
    ls.add_argument("--names", action="store_true", help="print only board names, one per line")
    ls.set_defaults(func=_ls)

    run = verbs.add_parser("exec", help="run a command inside a board", usage=USAGE_EXEC)
    # --state-dir may come before or after BOARD; everything after `--` is the command.
    _state_dir(run, required=False)
    run.add_argument("board")
    run.add_argument("rest", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command to run")
    run.set_defaults(func=_exec)


def _state_dir(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--state-dir", type=Path, required=required, help="directory holding the cluster's state")


def split_exec_args(rest: list[str]) -> tuple[Path | None, list[str]]:
    """Split what follows BOARD into an optional `--state-dir DIR` and the command.

    argparse cannot do this itself: a trailing REMAINDER swallows options given after BOARD.
    """
    state_dir: Path | None = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            return state_dir, rest[i + 1 :]
        if arg == "--state-dir" and i + 1 < len(rest):
            state_dir, i = Path(rest[i + 1]), i + 2
        elif arg.startswith("--state-dir="):
            state_dir, i = Path(arg.split("=", 1)[1]), i + 1
        else:
            break
    return state_dir, rest[i:]


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _say(line: str) -> None:
    print(f"pikube dev: {line}", flush=True)


def _guard(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call into the harness, turning its errors into the CLI's one-sentence errors."""
    from pikube.cli.main import CliError
    from pikube.dev.errors import DevError

    try:
        return func(*args, **kwargs)
    except DevError as exc:
        raise CliError(str(exc)) from None


def _up(args: argparse.Namespace) -> int:
    from pikube.dev import cluster

    settings = cluster.DevSettings(
        state_dir=args.state_dir, workers=args.workers, docker_host=os.environ.get("DOCKER_HOST") or None,
        backend=args.backend, masters=args.masters,
    )
    up = _guard(cluster.up, settings, cluster.default_launchers(args.backend, args.masters), _say)
    _print_boards(up)
    print()
    prog = sys.argv[0] if "/" in sys.argv[0] else "pikube"  # as the user typed it, e.g. .venv/bin/pikube
    for line in next_steps(up, prog):
        print(line)
    return 0


def next_steps(up: Cluster, prog: str) -> list[str]:
    """What to try once the cluster is up: kubectl, the status page, a NodePort from inside a board."""
    from agent.runtime.localimages import BUSYBOX_IMAGE
    from pikube.dev.state import ENV_FILE

    d = up.state_dir
    master = up.lan.boards[0]
    other = up.lan.boards[-1].name
    kubectl = f"kubectl --kubeconfig {up.kubeconfig}"
    return [
        f"The cluster is up: {len(up.lan.boards)} boards. Try it (or `. {d / ENV_FILE}` and plain kubectl):",
        f"  {kubectl} get nodes -o wide -L kubernetes.io/arch",
        f"  {kubectl} create deployment web --image={BUSYBOX_IMAGE} -- httpd -f -p 80 -h /var/www",
        f"  {kubectl} expose deployment web --port=80 --type=NodePort",
        f"  {kubectl} scale deployment web --replicas=4",
        f"  PORT=$({kubectl} get service web -o jsonpath='{{.spec.ports[0].nodePort}}')",
        f"  {prog} dev exec {other} --state-dir {d} -- wget -qO- http://{master.address}:$PORT/",
        f"  {kubectl} delete service,deployment web",
        f"Status page: http://{master.address}:8080/",
        f"Look inside: {prog} dev exec master --state-dir {d} -- ip addr",
        f"Logs:        {d}/boards/<board>/data/logs/",
        f"Remove it:   {prog} dev down --state-dir {d}",
    ]


def _print_boards(up: Cluster) -> None:
    lan = up.lan
    print(f"run {up.state.run}: LAN {lan.subnet} on bridge {lan.bridge}, this machine is {lan.host_address}")
    if up.state.engine is not None:
        print(f"engine: {up.state.engine.host}" + (" (private)" if up.state.engine.root else ""))
    print(f"{'BOARD':<12} {'NAMESPACE':<28} ADDRESS")
    for board in lan.boards:
        print(f"{board.name:<12} {board.netns:<28} {board.address}")
    for proc in up.state.processes:
        print(f"process {proc.name} in {proc.board}: pid {proc.pid}, log {proc.log}")


def _down(args: argparse.Namespace) -> int:
    from pikube.dev import cluster

    if _guard(cluster.down, args.state_dir, _say):
        _say(f"removed the dev cluster in {args.state_dir}")
    else:
        _say(f"there is no dev cluster in {args.state_dir}; nothing to remove")
    return 0


def _ls(args: argparse.Namespace) -> int:
    from pikube.dev import cluster

    up = _guard(cluster.open_cluster, args.state_dir)
    if up.state.lan is None:
        from pikube.cli.main import CliError

        raise CliError(f"the dev cluster in {args.state_dir} has no boards yet (it is {up.state.phase.value}).")
    if args.names:
        for board in up.lan.boards:
            print(board.name)
        return 0
    _print_boards(up)
    return 0


def _exec(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError
    from pikube.dev import cluster

    state_dir, cmd = split_exec_args(list(args.rest))
    state_dir = state_dir or args.state_dir
    if state_dir is None:
        raise CliError(f"give the cluster's state directory: {USAGE_EXEC}")
    sys.stdout.flush()
    return _guard(cluster.exec_in_board, state_dir, args.board, cmd)
