"""`pikube user create NAME [--group G]`: a kubeconfig for a person, signed by the cluster CA (run on the master).

Like `kubeadm kubeconfig user`: the certificate names the user (CN) and its
groups (O); what the user may do is RBAC's decision, so the command prints the
`kubectl create rolebinding` that would give the user `view` or `edit` in a
namespace. Revoking is deleting the binding (the certificate stays valid until
it expires, as in Kubernetes: keep `--days` short for guests).

Identities that would bypass RBAC or pose as a board are refused: user names
starting `system:` and the groups `system:masters` (the admin's) and
`system:nodes` (the boards').
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from pikube.bootstrap.layout import CONFIG_DIR

_RESERVED_GROUPS = ("system:masters", "system:nodes")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,62}$")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("user", help="kubeconfigs for people (on the master)")
    p.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="pikube's data dir (default: from the config dir's record, else /var/lib/pikube)")
    verbs = p.add_subparsers(dest="user_command", metavar="VERB")
    p.set_defaults(func=lambda _args: _help(p))
    create = verbs.add_parser("create", help="a client-certificate kubeconfig for NAME")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--group", action="append", default=[], help="a group the user is in (repeatable)")
    create.add_argument("--days", type=int, default=365, help="how long the certificate is valid (default 365)")
    create.add_argument("--server", default="", help="the API address in the kubeconfig (default: this master's)")
    create.add_argument("--out", type=Path, default=None, help="where to write it (default: NAME.kubeconfig)")
    create.set_defaults(func=_create)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def check_identity(name: str, groups: list[str]) -> None:
    """ValueError with a sentence when `name` or `groups` may not be given to a person."""
    if not _SAFE.match(name):
        raise ValueError(f"a user name is letters, digits and . _ @ + - (up to 63), starting with a letter or "
                         f"digit, not {name!r}")
    for group in groups:
        if group in _RESERVED_GROUPS:
            whose = "the admin's" if group == "system:masters" else "the boards'"
            raise ValueError(f"the group {group} is reserved ({whose}); bind a role instead, e.g. `kubectl create "
                             f"clusterrolebinding {name}-admin --clusterrole=cluster-admin --user={name}`")
        if not group or len(group) > 253 or any(c in group for c in "\n\r,/"):
            raise ValueError(f"not a usable group name: {group!r}")


def _create(args: argparse.Namespace) -> int:
    from core.kubeconfig import KubeConfig, write_kubeconfig
    from master.pki import issue_client_cert
    from pikube.cli.main import CliError
    from pikube.cli.token import master_pki

    try:
        check_identity(args.name, args.group)
    except ValueError as exc:
        raise CliError(f"{exc}.") from None
    if args.days < 1:
        raise CliError(f"--days must be at least 1, not {args.days}.")
    _data, pki, rec = master_pki(args)
    server = args.server or (rec.server if rec is not None else "")
    if not server:
        raise CliError("this board's record names no API address: pass --server https://ADDRESS:6443.")
    out: Path = args.out or Path(f"{args.name}.kubeconfig")
    if out.exists():
        raise CliError(f"{out} exists; remove it or pass another --out.")
    cert, key = issue_client_cert(pki, args.name, args.group, args.days)
    write_kubeconfig(out, KubeConfig(server=server, ca_pem=pki.ca_pem(), cert_pem=cert, key_pem=key),
                     user=args.name, context=f"{args.name}@pikube")
    print(f"wrote {out} for user {args.name!r}" + (f" in groups {', '.join(args.group)}" if args.group else ""))
    print("It can do nothing until a role is bound, e.g.:")
    print(f"    kubectl create rolebinding {args.name}-view --clusterrole=view --user={args.name} --namespace=NS")
    return 0
