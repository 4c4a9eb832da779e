"""`pikube disable`, `pikube reset` and `pikube start`: taking a board out of service, and booting it.

`start` is what a boot does: under systemd the enabled units start by
themselves; with `--init none` something must run `pikube start` at boot
(e.g. a line in /etc/rc.local), which starts the supervisor again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pikube.bootstrap import record
from pikube.bootstrap.init import InitKind, Supervised
from pikube.bootstrap.layout import CONFIG_DIR, DATA_DIR, Layout
from pikube.bootstrap.record import NodeRecord, Role
from pikube.bootstrap.teardown import Board
from pikube.cli import boardenv


def register(sub: Any) -> None:
    d = sub.add_parser("disable", help="stop and remove this board's services and pod network; keep its data")
    _dirs(d)
    d.set_defaults(func=_disable)
    r = sub.add_parser("reset", help="disable, then delete this board's pikube data and configuration")
    _dirs(r)
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.set_defaults(func=_reset)
    s = sub.add_parser("start", help="start this board's services again (what a boot does)")
    _dirs(s)
    s.set_defaults(func=_start)


def _dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    p.add_argument("--data-dir", type=Path, default=None, help="default: from the config dir's record, else "
                                                                f"{DATA_DIR}")
    p.add_argument("--init", choices=("systemd", "none"), default=None, help="default: from the record")


def _board(args: argparse.Namespace) -> Board:
    from pikube.cli.main import CliError

    if not boardenv.is_root():
        raise CliError(f"pikube {args.command} must run as root (it stops system services): run it with sudo.")
    probe = Layout(config_dir=args.config_dir.absolute())
    try:
        rec = record.load(probe.record)
    except Exception as exc:
        raise CliError(str(exc)) from None
    data_dir = args.data_dir or (Path(rec.data_dir) if rec else DATA_DIR)
    layout = Layout(config_dir=probe.config_dir, data_dir=data_dir.absolute())
    kind = InitKind(args.init) if args.init else (rec.init if rec else boardenv.init_kind(None))
    return Board(layout=layout, record=rec, init=boardenv.make_init(kind, layout),
                 remove_network=lambda: boardenv.remove_network(layout, rec),
                 reset_agent=lambda: boardenv.reset_agent(layout, rec) if rec else None)


def _say(prog: str) -> Any:
    return lambda line: print(f"pikube {prog}: {line}", flush=True)


def _disable(args: argparse.Namespace) -> int:
    from pikube.bootstrap.teardown import disable

    board = _board(args)
    if not disable(board, _say("disable")):
        print("pikube disable: nothing was set up on this board; nothing to do")
        return 0
    again = "enable-master" if board.record is None or board.record.role is Role.MASTER else "enable-worker"
    print(f"Disabled; the data stays in {board.layout.data_dir}: `sudo {again} ...` brings this board back.")
    return 0


def _reset(args: argparse.Namespace) -> int:
    from pikube.bootstrap.teardown import reset
    from pikube.cli.main import CliError

    board = _board(args)
    lay = board.layout
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("pikube reset deletes this board's cluster data; confirm with --yes.")
        what = _what_goes(board.record, lay)
        answer = input(f"This deletes {what}. Type 'yes' to go on: ")
        if answer.strip().lower() != "yes":
            print("pikube reset: nothing done")
            return 1
    reset(board, _say("reset"), boardenv.invoking_user_kubeconfig().path)
    print("Reset: pikube's services, pod network, data and configuration are gone from this board.")
    return 0


def _what_goes(rec: NodeRecord | None, lay: Layout) -> str:
    if rec is not None and rec.role is Role.MASTER:
        return (f"the cluster itself (its store, CA and tokens in {lay.master_data}), this board's pods, "
                f"and {lay.config_dir}'s pikube files")
    return f"this board's pods, its node credentials ({lay.agent_data}) and {lay.config_dir}'s pikube files"


def _start(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError

    board = _board(args)
    if board.record is None:
        raise CliError("nothing to start: this board was never set up (run enable-master or enable-worker).")
    units = board.record.units
    missing = [u for u in units if board.init.installed_text(u) is None]
    if missing:
        raise CliError(f"{', '.join(missing)} is not installed (the board was disabled): run enable-"
                       f"{board.record.role.value} to set it up again.")
    from pikube.bootstrap.init import InitError

    try:
        for unit in units:
            if not board.init.active(unit):
                board.init.start(unit)
    except InitError as exc:
        raise CliError(str(exc)) from None
    if isinstance(board.init, Supervised):
        print(f"pikube start: supervisor running {board.layout.supervised_units}")
    print("pikube start: " + ", ".join(f"{u} running" for u in units))
    return 0
