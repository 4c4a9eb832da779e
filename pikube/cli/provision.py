"""`pikube provision`: running boards become a cluster from the laptop, over SSH (k3sup's job, for pikube).

    pikube provision --master pi@10.0.0.10 --worker pi@10.0.0.11 --worker pi@10.0.0.12
    pikube provision --reset pi@10.0.0.10 pi@10.0.0.11 pi@10.0.0.12
    pikube provision --write-bundle DIR      # the wheel bundle, also for ansible/ (pikube_bundle_dir)

Flags to settings and a summary table; the work is in `pikube.provision`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_USER = "pi"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "provision", help="make running boards a cluster over SSH (from your laptop)",
        description="Install pikube on boards over SSH from an offline wheel bundle, run enable-master on one and "
                    "enable-worker on the others (in parallel), and merge the admin kubeconfig into yours.")
    p.add_argument("--master", metavar="[USER@]HOST[:PORT]", help="the board that becomes the master")
    p.add_argument("--worker", metavar="[USER@]HOST[:PORT]", action="append", default=[],
                   help="a board that joins as a worker (repeat for more)")
    p.add_argument("--reset", metavar="[USER@]HOST[:PORT]", nargs="+",
                   help="undo: pikube reset on these boards and remove pikube from them")
    p.add_argument("--write-bundle", metavar="DIR", type=Path,
                   help="only make the wheel bundle in DIR (for ansible's pikube_bundle_dir) and exit")
    p.add_argument("--bundle", metavar="DIR", type=Path,
                   help="install from this bundle (default: made from this pikube's source, cached)")
    p.add_argument("--ssh-key", metavar="FILE", type=Path, help="private key to log in with (default: ssh agent "
                                                                   "and ~/.ssh/id_*)")
    p.add_argument("--known-hosts", metavar="FILE", type=Path, default=Path.home() / ".ssh" / "known_hosts",
                   help="host keys to check the boards against (default: ~/.ssh/known_hosts)")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="trust boards not in known_hosts yet (prints and records their fingerprints)")
    p.add_argument("--ask-sudo-password", action="store_true", help="sudo on the boards needs a password: ask once")
    p.add_argument("--sudo-password-file", metavar="FILE", type=Path,
                   help="sudo on the boards needs a password: read it from the first line of FILE")
    p.add_argument("--no-sudo", action="store_true", help="log in as root; do not use sudo")
    p.add_argument("--context", default="pikube", help="kubeconfig context name for this cluster (default: pikube)")
    p.add_argument("--kubeconfig", metavar="FILE", type=Path, default=None,
                   help="kubeconfig to merge into (default: the first file in $KUBECONFIG, else ~/.kube/config)")
    p.add_argument("--keep-current-context", action="store_true",
                   help="merge the context but leave kubectl's current context as it is")
    p.add_argument("--backend", choices=("host-gw", "vxlan"), default="host-gw", help="pod network between boards")
    p.add_argument("--docker-host", default="", help="Docker engine for the boards' pods (default: each board's own)")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for a board's SSH server")
    p.set_defaults(func=_provision)


def _kubeconfig(flag: Path | None) -> Path:
    if flag is not None:
        return flag
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    head = ("BOARD", "ROLE", "TIME", "RESULT")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in [head, *rows])


def _provision(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError
    from pikube.provision import bundle, cluster
    from pikube.provision.ssh import SshOptions, Target

    def say(line: str) -> None:
        print(f"pikube provision: {line}", flush=True)

    if args.write_bundle is not None:
        try:
            version = bundle.make(args.write_bundle.absolute())
        except bundle.BundleError as exc:
            raise CliError(str(exc)) from None
        print(f"pikube provision: bundle of pikube {version} in {args.write_bundle}")
        return 0
    if args.reset and (args.master or args.worker):
        raise CliError("--reset takes the boards to undo; give it without --master and --worker.")
    if not args.reset and not args.master:
        raise CliError("say which board becomes the master: --master [USER@]HOST (and --worker for the others).")
    try:
        master = Target.parse(args.master, DEFAULT_USER) if args.master else None
        workers = tuple(Target.parse(w, DEFAULT_USER) for w in args.worker)
        resets = tuple(Target.parse(r, DEFAULT_USER) for r in args.reset or ())
    except ValueError as exc:
        raise CliError(str(exc)) from None
    hosts = [t.host for t in ((master,) if master else ()) + workers + resets]
    if len(set(hosts)) != len(hosts):
        raise CliError("a board is named twice.")
    password = None
    if args.sudo_password_file is not None:
        try:
            password = args.sudo_password_file.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise CliError(f"cannot read a password from {args.sudo_password_file}: {exc}") from None
    elif args.ask_sudo_password:
        password = getpass.getpass("sudo password on the boards: ")
    ssh = SshOptions(known_hosts=args.known_hosts.expanduser(), accept_new=args.accept_new_host_keys,
                     key_file=args.ssh_key, connect_timeout=args.connect_timeout, sudo_password=password,
                     use_sudo=not args.no_sudo)
    if resets:
        results = cluster.reset(resets, ssh, say)
    else:
        assert master is not None
        try:
            source = args.bundle.absolute() if args.bundle else None
            if source is None:
                source = Path.home() / ".cache" / "pikube" / "bundle"
                say(f"wheel bundle in {source}")
                bundle.ensure(source)
            bundle.pikube_version(source)
        except bundle.BundleError as exc:
            raise CliError(str(exc)) from None
        settings = cluster.Settings(master=master, workers=workers, ssh=ssh, bundle=source,
                                    kubeconfig=_kubeconfig(args.kubeconfig).expanduser(), context=args.context,
                                    use_context=not args.keep_current_context, backend=args.backend,
                                    docker_host=args.docker_host)
        results = cluster.provision(settings, say)
    print()
    print(_table([(str(r.target), r.role, f"{r.seconds:.1f}s", ("" if r.ok else "FAILED: ") + r.result)
                  for r in results]))
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"\n{len(failed)} of {len(results)} boards failed.", file=sys.stderr)
        return 1
    if not resets:
        print(f"\nkubectl --context {args.context} get nodes")
    return 0
