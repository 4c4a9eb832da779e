"""The host name and the time zone: files only (no hostnamectl or timedatectl, whose daemons need D-Bus).

systemd reads /etc/hostname early at boot, before first boot runs, so on the
running system the kernel's name is set too (`hostname NAME`). /etc/hosts maps
the name to 127.0.1.1, as Debian's installer does, so `sudo` and tools that
resolve their own host name do not wait for DNS. The time zone is the
/etc/localtime symlink plus /etc/timezone (Debian keeps both).
"""

from __future__ import annotations

import socket

from core.boardconfig import BoardConfig
from pikube.firstboot.host import Host, read_text, symlink, write_file
from pikube.firstboot.step import Outcome, StepError, changed, skipped

ZONEINFO = "/usr/share/zoneinfo"


def hosts_with(text: str, name: str) -> str:
    """/etc/hosts with its 127.0.1.1 line naming `name` (replaced, or added after 127.0.0.1)."""
    wanted = f"127.0.1.1\t{name}"
    lines = text.splitlines()
    out: list[str] = []
    placed = False
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "127.0.1.1":
            if not placed:
                out.append(wanted)
                placed = True
            continue
        out.append(line)
    if not placed:
        at = next((i + 1 for i, ln in enumerate(out) if ln.split()[:1] == ["127.0.0.1"]), len(out))
        out.insert(at, wanted)
    if not any(ln.split()[:1] == ["127.0.0.1"] for ln in out):
        out.insert(0, "127.0.0.1\tlocalhost")
    return "\n".join(out) + "\n"


def hostname(host: Host, cfg: BoardConfig) -> Outcome:
    name = cfg.hostname
    if name is None:
        current = read_text(host.path("/etc/hostname")).strip() or "unchanged"
        return skipped(f"not given; the board keeps its name ({current})")
    did = write_file(host.path("/etc/hostname"), name + "\n")
    hosts = host.path("/etc/hosts")
    did |= write_file(hosts, hosts_with(read_text(hosts), name))
    if host.live and (did or socket.gethostname() != name):
        host.run(["hostname", name])
        did = True
    return changed(did, f"set to {name}", f"already {name}")


def timezone(host: Host, cfg: BoardConfig) -> Outcome:
    zone = cfg.timezone
    if zone is None:
        return skipped("not given; the board stays on UTC (or the zone set before)")
    target = f"{ZONEINFO}/{zone}"
    if not host.path(target).is_file():
        raise StepError(f"there is no zone file {target} on this board (is the tzdata package installed?)")
    did = symlink(host.path("/etc/localtime"), target)
    did |= write_file(host.path("/etc/timezone"), zone + "\n")
    return changed(did, f"set to {zone}", f"already {zone}")
