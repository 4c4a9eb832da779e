"""`pikube token create|list|delete`: the join tokens of this master (run on the master board).

Tokens live in the master's data dir (`master/tokens.py`); this module finds
that directory from the bootstrap's record (or `--data-dir`), and prints a
new token together with the enable-worker line that uses it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

from pikube.bootstrap import record
from pikube.bootstrap.layout import CONFIG_DIR, Layout

DEFAULT_TTL = "24h"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("token", help="create, list and delete join tokens (on the master)")
    p.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="pikube's data dir (default: from the config dir's record, else /var/lib/pikube)")
    verbs = p.add_subparsers(dest="token_command", metavar="VERB")
    p.set_defaults(func=lambda _args: _help(p))
    create = verbs.add_parser("create", help="a new join token, printed with the enable-worker command")
    create.add_argument("--ttl", default=DEFAULT_TTL, help=f"lifetime: 30m, 24h, 7d, or 0 for none "
                                                           f"(default {DEFAULT_TTL})")
    create.add_argument("--description", default="", help="a note shown by `pikube token list`")
    create.add_argument("--master", action="store_true",
                        help="a token that may also add masters (`enable-master --join`): a joining master receives "
                             "the cluster's CA keys, so keep it short-lived")
    create.set_defaults(func=_create)
    verbs.add_parser("list", help="the tokens: id, description, created, expires").set_defaults(func=_list)
    delete = verbs.add_parser("delete", help="delete a token by its id (the part before the dot)")
    delete.add_argument("token_id", metavar="ID")
    delete.set_defaults(func=_delete)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def parse_ttl(text: str) -> float | None:
    """`30m`, `24h`, `7d`, `3600` (seconds); `0` or `never`: no expiry. ValueError otherwise."""
    if text.strip().lower() in ("0", "never", "none"):
        return None
    match = _DURATION.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--ttl takes a duration such as 30m, 24h or 7d (or 0 for none), not {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def master_pki(args: argparse.Namespace) -> tuple[Path, Any, record.NodeRecord | None]:
    """This board's master data dir, its PKI and the bootstrap's record (CliError when it is no master).

    `--config-dir` finds the record; `--data-dir` overrides the data dir it names.
    """
    from master.pki import pki_paths
    from pikube.cli.main import CliError

    layout = Layout(config_dir=args.config_dir)
    try:
        rec = record.load(layout.record)
    except Exception as exc:
        raise CliError(str(exc)) from None
    data_dir = args.data_dir or (Path(rec.data_dir) if rec else layout.data_dir)
    master_data = Layout(data_dir=data_dir).master_data
    pki = pki_paths(master_data)
    if not pki.ca_cert.exists():
        raise CliError(f"this board is not a master ({pki.ca_cert} does not exist): run `pikube {args.command}` "
                       "on the master board.")
    return master_data, pki, rec


def _store(args: argparse.Namespace) -> tuple[Any, record.NodeRecord | None]:
    from master.tokens import TokenStore

    master_data, pki, rec = master_pki(args)
    return TokenStore.for_pki(master_data, pki), rec


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _create(args: argparse.Namespace) -> int:
    from core.jointoken import split_server
    from pikube.bootstrap.master import join_command, master_join_command
    from pikube.cli.main import CliError

    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        raise CliError(f"{exc}.") from None
    store, rec = _store(args)
    try:
        token = store.create(ttl, args.description, masters=args.master)
    except ValueError as exc:
        raise CliError(f"{str(exc).rstrip('.')}.") from None
    print(token)
    if rec is not None:
        host, port = split_server(rec.server)
        expiry = "" if ttl is None else f" (valid until {_when(time.time() + ttl)})"
        print(f"Join a board with{expiry}:\n    {join_command(host, port, token)}")
        if args.master and rec.datastore != "etcd":
            print("This master keeps the cluster in SQLite, so it cannot take more masters "
                  "(a cluster of several starts with `enable-master --cluster-init`).")
        elif args.master:
            print(f"Add a master (this cluster keeps its state in etcd) with:\n"
                  f"    {master_join_command(rec.server, token)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store, _rec = _store(args)
    now = time.time()
    print(f"{'ID':<8} {'JOINS':<16} {'CREATED':<22} {'EXPIRES':<22} DESCRIPTION")
    for info in store.list():
        expires = _when(info.expires) + (" (expired)" if info.expired(now) else "")
        joins = "workers,masters" if info.masters else "workers"
        print(f"{info.token_id:<8} {joins:<16} {_when(info.created):<22} {expires:<22} {info.description}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError

    store, _rec = _store(args)
    if not store.delete(args.token_id):
        raise CliError(f"there is no token with id {args.token_id!r}; `pikube token list` shows them.")
    print(f"token {args.token_id} deleted: boards can no longer join with it (joined boards keep working)")
    return 0
