"""The two images an agent makes itself from Debian's busybox-static, with no registry: pause and busybox.

`pikube/busybox` is a small general-purpose image (shell, wget, nc, httpd...) for
tests, demos and tutorials; `pikube/pause` holds every pod's namespaces: its PID 1 sleeps until
SIGTERM or SIGINT and then exits at once with status 0. Both are `docker import`s
of the same rootfs; their tag changes when `IMAGE_REVISION` (or pikube's version)
does, so agents can name them by the constants below. The agent makes them when a
pod first needs the pause image; the dev harness and the tests reuse `ensure`.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import __version__

BUSYBOX = Path("/bin/busybox")
IMAGE_REVISION = 1  # bump when the rootfs or the image settings below change
IMAGE_VERSION = f"{__version__}-{IMAGE_REVISION}"
BUSYBOX_REPO = "pikube/busybox"
PAUSE_REPO = "pikube/pause"
BUSYBOX_IMAGE = f"{BUSYBOX_REPO}:{IMAGE_VERSION}"
PAUSE_IMAGE = f"{PAUSE_REPO}:{IMAGE_VERSION}"
BUSYBOX_VERSION_LABEL = "org.pikube.busybox-version"
# PID 1 ignores signals it has no handler for, so the trap is what makes it stoppable;
# `wait` returns as soon as a trapped signal arrives.
PAUSE_SCRIPT = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done"
REQUIRED_APPLETS = ("sh", "sleep", "wget", "nc", "httpd", "ping", "ip", "tar", "cat")  # tar: kubectl cp

_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\ndaemon:x:1:\ntty:x:5:\nwww-data:x:33:\nnogroup:x:65534:\n",
    "etc/shadow": "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/hostname": "busybox\n",
    "etc/resolv.conf": "",
    "etc/nsswitch.conf": "hosts: files dns\n",
    "var/www/index.html": "pikube busybox\n",
}
_DIRS = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "dev": 0o755,
    "proc": 0o555,
    "sys": 0o555,
    "run": 0o755,
    "root": 0o700,
    "home": 0o755,
    "tmp": 0o1777,
    "var": 0o755,
    "var/tmp": 0o1777,
    "var/www": 0o755,
    "var/log": 0o755,
}


class ImageError(Exception):
    """The images cannot be made here (no static busybox, or one without the applets they need)."""


@dataclass(frozen=True)
class Busybox:
    """The host's busybox: where it is, its version, and its applets' install paths."""

    path: Path
    version: str
    applets: tuple[str, ...]


def is_static(path: Path) -> bool:
    """True when the ELF file at `path` has no program interpreter (PT_INTERP)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        wide, endian = head[4] == 2, "<" if head[5] == 1 else ">"
        if wide:
            (phoff,) = struct.unpack_from(endian + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        else:
            (phoff,) = struct.unpack_from(endian + "I", head, 28)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 42)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(struct.unpack_from(endian + "I", table, i * phentsize)[0] != pt_interp for i in range(phnum))


def find_busybox(path: Path = BUSYBOX) -> Busybox:
    """Describe the host's static busybox, or say how to install it."""
    if not path.exists() or not is_static(path):
        raise ImageError(f"{path} is not a static busybox; install Debian's busybox-static.")
    listing = subprocess.run([str(path), "--list-full"], capture_output=True, text=True, check=True).stdout
    applets = tuple(sorted(line.strip().lstrip("/") for line in listing.splitlines() if line.strip()))
    missing = [a for a in REQUIRED_APPLETS if not any(p.rsplit("/", 1)[-1] == a for p in applets)]
    if missing:
        raise ImageError(f"{path} lacks the applets {', '.join(missing)}; install Debian's busybox-static.")
    banner = subprocess.run([str(path)], capture_output=True, text=True, check=False).stdout
    words = banner.split()
    version = words[1].lstrip("v") if len(words) > 1 and words[0] == "BusyBox" else "unknown"
    return Busybox(path=path, version=version, applets=applets)


def _add(tar: tarfile.TarFile, name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, int(time.time()), link
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def rootfs_tar(busybox: Busybox) -> bytes:
    """A tar of a minimal root filesystem: busybox, its applets as symlinks, /etc basics."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = dict(_DIRS)
        for applet in busybox.applets:
            parent = applet.rsplit("/", 1)[0] if "/" in applet else ""
            if parent:
                dirs.setdefault(parent, 0o755)
        for name in sorted(dirs):
            _add(tar, name, tarfile.DIRTYPE, dirs[name])
        _add(tar, "bin/busybox", tarfile.REGTYPE, 0o755, busybox.path.read_bytes())
        for applet in busybox.applets:
            if applet != "bin/busybox":
                _add(tar, applet, tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        for name, text in sorted(_FILES.items()):
            _add(tar, name, tarfile.REGTYPE, 0o640 if name == "etc/shadow" else 0o644, text.encode())
    return buf.getvalue()


def image_changes(repo: str, busybox_version: str) -> list[str]:
    """The Dockerfile-style settings `docker import` applies to `repo`."""
    changes = [_ENV, "WORKDIR /", f"LABEL {BUSYBOX_VERSION_LABEL}={busybox_version}"]
    if repo == PAUSE_REPO:
        changes.append(f"CMD {_json_list(['/bin/sh', '-c', PAUSE_SCRIPT])}")
    else:
        changes.append('CMD ["sh"]')
    return changes


def _json_list(items: Sequence[str]) -> str:
    return json.dumps(list(items))


def has_image(api: Any, name: str) -> bool:
    """Whether the engine has image `name`; `api` is docker's low-level APIClient (what the agent's runtime holds)."""
    import docker

    try:
        api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure(api: Any, busybox_path: Path = BUSYBOX) -> list[str]:
    """Make `BUSYBOX_IMAGE` and `PAUSE_IMAGE` in the engine unless they exist; return those made.

    `api` is docker's low-level APIClient (a DockerClient's `.api`), as the agent's runtime holds it.
    """
    wanted = [(repo, f"{repo}:{IMAGE_VERSION}") for repo in (BUSYBOX_REPO, PAUSE_REPO)]
    missing = [(repo, name) for repo, name in wanted if not has_image(api, name)]
    if not missing:
        return []
    busybox = find_busybox(busybox_path)
    data = rootfs_tar(busybox)
    for repo, _name in missing:
        api.import_image_from_data(
            data, repository=repo, tag=IMAGE_VERSION, changes=image_changes(repo, busybox.version)
        )
    return [name for _repo, name in missing]
