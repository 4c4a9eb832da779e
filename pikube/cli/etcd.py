"""`pikube etcd`: run this master board's etcd member (what `pikube-etcd.service` starts).

Why a command of ours rather than etcd in the unit directly: before etcd
starts, its certificates must exist and cover the board's address, and its
flags follow from a few facts (the member's name and address, the cluster it
joins). This command makes the etcd CA's certificates when needed
(`master.etcdpki`), then replaces itself with etcd (`exec`), so no Python
stays resident and systemd (or pikube's supervisor) watches etcd itself.

Every connection is mutual TLS with the etcd CA: clients on :2379 (the
masters, with their client certificate) and peers on :2380. The timing
flags are for SD cards (docs/operations.md): a card's fsync can take
20-100 ms, and etcd's defaults (100 ms heartbeat, 1 s election) would then
mistake a slow card for a dead leader.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
from pathlib import Path
from typing import Any

CLIENT_PORT = 2379
PEER_PORT = 2380
HEARTBEAT_MS = 250
ELECTION_MS = 2500
# etcd's store may grow to this before it raises the NOSPACE alarm; pikube's master compacts well below it.
QUOTA_BYTES = 2 * 1024**3


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "etcd", help="run this master board's etcd member (started by pikube-etcd.service)",
        description="Make the etcd member's certificates if needed, then run etcd with mutual TLS on "
                    f":{CLIENT_PORT} (clients) and :{PEER_PORT} (peers).")
    p.add_argument("--name", required=True, help="the member's name (the board's node name)")
    p.add_argument("--advertise-address", required=True, help="this board's IP address, as the other members "
                                                               "and masters reach it")
    p.add_argument("--master-data", type=Path, required=True, help="the master's data dir (its pki/etcd/)")
    p.add_argument("--data-dir", type=Path, required=True, help="etcd's own data")
    p.add_argument("--initial-cluster", default="", metavar="NAME=URL,...",
                   help="the members when this one first starts (default: this member alone)")
    p.add_argument("--initial-cluster-state", choices=("new", "existing"), default="new",
                   help="new: this member starts a cluster; existing: it joins one")
    p.set_defaults(func=_run)


def peer_url(address: str) -> str:
    return f"https://{_host(address)}:{PEER_PORT}"


def client_url(address: str) -> str:
    return f"https://{_host(address)}:{CLIENT_PORT}"


def _host(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


def etcd_argv(binary: str, name: str, address: str, data_dir: Path, pki: Any, initial_cluster: str,
              state: str) -> list[str]:
    """etcd's command line for this member (`pki`: a master.etcdpki.EtcdPki)."""
    clients = f"{client_url(address)},https://127.0.0.1:{CLIENT_PORT}"
    return [
        binary, "--name", name, "--data-dir", str(data_dir),
        "--listen-client-urls", clients, "--advertise-client-urls", client_url(address),
        "--listen-peer-urls", peer_url(address), "--initial-advertise-peer-urls", peer_url(address),
        "--initial-cluster", initial_cluster or f"{name}={peer_url(address)}",
        "--initial-cluster-state", state, "--initial-cluster-token", "pikube",
        "--client-cert-auth", "--trusted-ca-file", str(pki.ca_cert),
        "--cert-file", str(pki.member_cert), "--key-file", str(pki.member_key),
        "--peer-client-cert-auth", "--peer-trusted-ca-file", str(pki.ca_cert),
        "--peer-cert-file", str(pki.member_cert), "--peer-key-file", str(pki.member_key),
        "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS),
        "--quota-backend-bytes", str(QUOTA_BYTES), "--logger", "zap", "--log-level", "warn",
    ]


def _run(args: argparse.Namespace) -> int:
    from master.etcdpki import ensure_etcd_pki
    from master.pki import PkiError
    from pikube.cli.main import CliError

    try:
        ipaddress.ip_address(args.advertise_address)
    except ValueError:
        raise CliError(f"--advertise-address must be this board's IP address, not {args.advertise_address!r}") from None
    binary = shutil.which("etcd")
    if binary is None:
        raise CliError("etcd is not installed: install Debian's etcd-server (sudo apt-get install etcd-server)")
    try:
        pki = ensure_etcd_pki(args.master_data, args.name, [args.advertise_address])
    except (PkiError, ValueError) as exc:
        raise CliError(f"the etcd certificates: {exc}") from exc
    args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = etcd_argv(binary, args.name, args.advertise_address, args.data_dir, pki, args.initial_cluster,
                     args.initial_cluster_state)
    os.execv(binary, argv)
    return 0  # not reached: etcd has replaced this process
