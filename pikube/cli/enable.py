"""`enable-master` and `enable-worker` (also `pikube enable-master|enable-worker`): flags to settings, then print.

The work is in `pikube.bootstrap.master` / `.worker`; this module only turns
flags and the surroundings (`boardenv`) into their frozen settings and hooks,
and prints what happened, ending with the one line a user needs next.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path
from typing import Any

from core.settings import parse_address_pool
from pikube.bootstrap.common import UserFile
from pikube.bootstrap.layout import CONFIG_DIR, DATA_DIR, Layout
from pikube.cli import boardenv, boardfile

BACKENDS = ("host-gw", "vxlan")


def register(sub: Any) -> None:
    m: argparse.ArgumentParser = sub.add_parser(
        "enable-master", help="make this board the cluster's master (and run pods on it)",
        description="Set this board up as the master: CA and certificates, admin kubeconfig, the master and "
                    "agent services; prints the command that joins other boards.")
    m.add_argument("--advertise-address", default="",
                   help="address other boards and kubectl reach this master at (default: this board's address)")
    m.add_argument("--backend", choices=BACKENDS, default="host-gw",
                   help="pod network between boards: host-gw (one switch, default) or vxlan")
    m.add_argument("--taint-master", action="store_true",
                   help="keep ordinary pods off the master board (taint node-role.kubernetes.io/master)")
    m.add_argument("--port", type=int, default=6443, help="API server port")
    m.add_argument("--web-port", type=int, default=8080, help="status page port (0 = off)")
    m.add_argument("--lb-pool", action="append", default=[], metavar="RANGE",
                   help="LAN addresses for LoadBalancer services, e.g. 192.168.1.240-192.168.1.250 (repeatable; "
                        "default: the boards' own addresses)")
    m.add_argument("--cluster-init", action="store_true",
                   help="keep the cluster's state in an etcd member on this board (Debian's etcd-server), the first "
                        "of several masters, instead of SQLite")
    m.add_argument("--api-address", default="", metavar="IP",
                   help="with --cluster-init: a free LAN address that floats to a live master (announced by ARP by "
                        "one board); kubectl's kubeconfig names it, and masters that join take it over")
    m.add_argument("--join", default="", metavar="URL",
                   help="join the cluster of the master at URL (https://HOST:6443) as one more master; it must keep "
                        "its state in etcd (--cluster-init), and --token must be a master token")
    m.add_argument("--token", default="", help="with --join: a token made by `pikube token create --master` on a "
                                               "master of that cluster")
    m.add_argument("--user-kubeconfig", type=Path, default=None,
                   help="where kubectl's copy of the admin kubeconfig goes when none is there "
                        "(default: ~/.kube/config of the user who ran sudo)")
    _common(m)
    m.set_defaults(func=_master)

    w: argparse.ArgumentParser = sub.add_parser(
        "enable-worker", help="join this board to a master",
        description="Join this board to the cluster whose master is MASTER, with the token enable-master printed.")
    w.add_argument("master", metavar="MASTER", nargs="?", default="",
                   help="the master's address (HOST, HOST:PORT or https://HOST:PORT; default: $PIKUBE_MASTER, "
                        "else master: in the configuration file)")
    w.add_argument("--token", default="", help="join token, pikube-<sha256 of the CA>::<id>.<secret> (default: "
                                               "$PIKUBE_TOKEN, else token: in the configuration file)")
    _common(w)
    w.set_defaults(func=_worker)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node-name", default="", help="this board's node name (default: $PIKUBE_NODE_NAME, else "
                                                   "hostname: in the configuration file, else the host name)")
    p.add_argument("--config", type=Path, default=None,
                   help="the board's configuration file, keys as in pikube.yaml (default: $PIKUBE_CONFIG, else "
                        "config.yaml in --config-dir, if it exists); flags and PIKUBE_* variables win over it")
    p.add_argument("--init", choices=("systemd", "none"), default=None,
                   help="run the services with systemd, or with pikube's own supervisor "
                        "(default: systemd when it is running)")
    p.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--docker-host", default="", help="Docker engine for pods (default: $DOCKER_HOST or the local "
                                                     "socket)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the node to be Ready")


def _layout(args: argparse.Namespace) -> Layout:
    return Layout(config_dir=args.config_dir.absolute(), data_dir=args.data_dir.absolute())


def _host_name() -> str:
    return socket.gethostname().split(".")[0].lower()


def _layers(args: argparse.Namespace, role: str, command: str) -> boardfile.Layers:
    """What the flags leave open comes from PIKUBE_* and then the configuration file (pikube/cli/boardfile.py)."""
    from pikube.cli.main import CliError

    try:
        layers = boardfile.load(args.config, args.config_dir / boardfile.CONFIG_NAME)
        boardfile.refuse_other_role(layers, role, command)
    except boardfile.BoardFileError as exc:
        raise CliError(str(exc)) from None
    return layers


def _say(prog: str) -> Any:
    return lambda line: print(f"{prog}: {line}", flush=True)


def _guard(func: Any, *args: Any) -> Any:
    from pikube.bootstrap.errors import BootstrapError
    from pikube.bootstrap.init import InitError
    from pikube.cli.main import CliError

    try:
        return func(*args)
    except (BootstrapError, InitError) as exc:
        raise CliError(str(exc)) from None


def default_address() -> str:
    """This board's address on its LAN: the source of its default route, else its first global IPv4 address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks a route, sends nothing
            return str(s.getsockname()[0])
        except OSError:
            pass
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                         check=False).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return ""


def _master(args: argparse.Namespace) -> int:
    from pikube.bootstrap.master import MasterSetup, enable_master
    from pikube.cli.main import CliError

    if not boardenv.is_root():
        raise CliError("enable-master must run as root (it installs system services): run it with sudo.")
    if not 1 <= args.port <= 65535 or not 0 <= args.web_port <= 65535 or args.web_port == args.port:
        raise CliError("--port must be 1-65535 and --web-port 0 (off) or another port.")
    try:
        parse_address_pool(args.lb_pool)
    except ValueError as exc:
        raise CliError(f"--lb-pool: {exc}") from None
    layers = _layers(args, "master", "enable-master")
    address = args.advertise_address or default_address()
    if not address:
        raise CliError("this board has no IPv4 address to advertise: give one with --advertise-address.")
    if args.join and args.cluster_init:
        raise CliError("--cluster-init starts a new cluster and --join joins one: give one of them.")
    if args.join and not args.token:
        raise CliError("--join needs --token: make one on a master of that cluster with "
                       "`sudo pikube token create --master`.")
    if args.api_address and args.join:
        raise CliError("--api-address is the cluster's, set by its first master: a joining master takes it over.")
    if args.api_address:
        import ipaddress

        try:
            ipaddress.IPv4Address(args.api_address)
        except ValueError:
            raise CliError(f"--api-address must be a free IPv4 address of the boards' LAN, not "
                           f"{args.api_address!r}.") from None
    if args.token and not args.join:
        raise CliError("--token goes with --join (the master is made here; workers take tokens).")
    if args.join:
        from core.jointoken import split_server

        try:
            split_server(args.join)
        except ValueError as exc:
            raise CliError(f"--join: {exc}") from None
    if args.cluster_init or args.join:
        import ipaddress
        import shutil

        if shutil.which("etcd") is None:
            raise CliError("a master on etcd runs an etcd member on this board, and etcd is not installed: "
                           "sudo apt-get install etcd-server")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise CliError(f"a master on etcd needs this board's IP address as --advertise-address (etcd members "
                           f"reach each other by address), not {address!r}.") from None
    layout = _layout(args)
    docker = boardenv.docker_host(args.docker_host)
    say = _say("enable-master")
    kind = boardenv.init_kind(args.init)
    user = (boardenv.invoking_user_kubeconfig() if args.user_kubeconfig is None
            else UserFile(args.user_kubeconfig.absolute()))
    setup = MasterSetup(layout=layout, advertise_address=address,
                        node_name=layers.node_name(args.node_name, _host_name()),
                        pikube=boardenv.pikube_command(), backend=args.backend, port=args.port,
                        web_port=args.web_port, taint_master=args.taint_master, docker_host=docker,
                        user_kubeconfig=user, timeout=args.timeout, lb_pool=tuple(args.lb_pool),
                        cluster_init=args.cluster_init, join=_master_url(args.join) if args.join else "",
                        join_token=args.token, api_address=args.api_address)
    hooks = boardenv.hooks(boardenv.doctor_context(layout, docker, args.backend), layout, say)
    out = _guard(enable_master, setup, boardenv.make_init(kind, layout), hooks)
    print()
    if out.changed:
        print(f"The master is Ready: node {setup.node_name} at {setup.server} ({out.seconds:.1f} s).")
    else:
        print(f"Nothing changed: this board is already the master (node {setup.node_name} at {setup.server}).")
    print(f"kubectl:     kubectl --kubeconfig {layout.admin_kubeconfig} get nodes")
    if args.web_port:
        print(f"status page: http://{address}:{args.web_port}/")
    print("Join another board to this cluster by running on it:")
    print(f"    {out.join_command}")
    if setup.datastore == "etcd":
        print("Add a master (3 or 5 in all, never an even number): make a master token here with "
              "`sudo pikube token create --master`, and on the new board run the `enable-master --join` line it "
              "prints.")
    return 0


def _master_url(text: str) -> str:
    """HOST, HOST:PORT or https://HOST:PORT as https://HOST:PORT (6443 when none is given)."""
    from core.jointoken import split_server

    host, port = split_server(text)
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _worker(args: argparse.Namespace) -> int:
    from pikube.bootstrap.worker import WorkerSetup, enable_worker
    from pikube.cli.main import CliError

    started = time.monotonic()
    layers = _layers(args, "worker", "enable-worker")
    master, token = layers.master(args.master), layers.token(args.token)
    source = f"{boardfile.ENV_MASTER}, or master: in {layers.path}" if layers.path else boardfile.ENV_MASTER
    if not master:
        raise CliError(f"give the master's address: enable-worker MASTER --token TOKEN (or set {source}).")
    if not token:
        where = f"{boardfile.ENV_TOKEN}, or token: in {layers.path}" if layers.path else boardfile.ENV_TOKEN
        raise CliError(f"give the join token that enable-master printed: --token TOKEN (or set {where}).")
    layout = _layout(args)
    docker = boardenv.docker_host(args.docker_host)
    say = _say("enable-worker")
    setup = WorkerSetup(layout=layout, master=master, token=token,
                        node_name=layers.node_name(args.node_name, _host_name()),
                        pikube=boardenv.pikube_command(), is_root=boardenv.is_root(), docker_host=docker,
                        timeout=args.timeout)
    kind = boardenv.init_kind(args.init)
    hooks = boardenv.hooks(boardenv.doctor_context(layout, docker), layout, say)
    joined = _guard(enable_worker, setup, boardenv.make_init(kind, layout), hooks)
    if joined.changed:
        print(f"Node {joined.node_name} joined {joined.server} and is Ready "
              f"({time.monotonic() - started:.1f} s; pod network: {joined.backend}).")
    else:
        print(f"Nothing changed: this board already is node {joined.node_name} of {joined.server}.")
    return 0
