"""`pikube firstboot`: apply the card's pikube.yaml (what pikube-firstboot.service runs at every boot).

The work is in `pikube.firstboot`; this module wires it to the running system
(root `/`, real commands, lines to stdout, which the unit sends to the
journal) and tells systemd when the local configuration is in place
(`READY=1` on `$NOTIFY_SOCKET`: the unit is `Type=notify`, so sshd and the
network start then, while the role step may still wait for its master).
`--root` applies a file to a mounted image's tree instead, changing nothing
on the running system.
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from core import firstboot as record


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "firstboot", help="apply the boot partition's pikube.yaml (run at boot by pikube-firstboot.service)",
        description="Apply /boot/firmware/pikube.yaml once: host name, time zone, user and SSH keys, Wi-Fi, "
                    "wired address, role; then remove its secrets from the card. A malformed file is reported "
                    "and nothing is applied. Keys and steps: docs/firstboot.md.")
    p.add_argument("--root", type=Path, default=Path("/"),
                   help="apply to the system tree under this directory instead of the running system")
    p.add_argument("--config", default="/boot/firmware/pikube.yaml", metavar="PATH",
                   help="pikube.yaml, as a path on the board (under --root)")
    p.add_argument("--state", default=str(record.STATE_PATH), metavar="PATH",
                   help="the record of what was applied, as a path on the board (under --root)")
    p.set_defaults(func=_run)


def sd_notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send `message` to systemd's notification socket; False when not run by systemd (no NOTIFY_SOCKET)."""
    target = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not target:
        return False
    address = "\0" + target[1:] if target.startswith("@") else target
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(message.encode(), address)
        except OSError:
            return False
    return True


def _run(args: argparse.Namespace) -> int:
    from pikube.cli.main import CliError
    from pikube.firstboot.host import Host
    from pikube.firstboot.run import FirstBoot

    root = args.root.absolute()
    live = root == Path("/")
    if live and os.geteuid() != 0:
        raise CliError("pikube firstboot changes the system (users, network, host name): run it as root.")
    def ready() -> None:
        sd_notify("READY=1\nSTATUS=local configuration applied")

    boot = FirstBoot(host=Host(root=root, live=live), boot_config=args.config, state=args.state, ready=ready)
    return boot.run()
