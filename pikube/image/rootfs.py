"""The Debian rootfs tarball, built with mmdebstrap under qemu-user and cached by a hash of its inputs.

Building it runs every package's maintainer scripts under emulation: 10-20 minutes
on two cores. So the tarball is kept in the cache folder under the recipe's rootfs
key (see recipe.rootfs_key) and reused by every later build whose image-builder/rootfs/
is unchanged. A build that fails leaves no tarball behind (it is written under a
temporary name and renamed when complete).

Running arm64 maintainer scripts needs the kernel's binfmt_misc to hand aarch64
ELF files to qemu-user-static. That registration is machine-wide state: `Binfmt`
adds it only when missing and removes exactly what it added.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pikube.image.recipe import Rootfs

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
TOOLS = {"mmdebstrap": "mmdebstrap", "qemu-aarch64-static": "qemu-user-static"}


class BuildError(Exception):
    """A build step failed; the message says which and how to fix it."""


def missing_tools(tools: dict[str, str]) -> list[str]:
    """The Debian packages to install for the `tools` (command → package) that are not on PATH."""
    return sorted({pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None})


class Binfmt:
    """qemu-aarch64 registered with binfmt_misc for the life of a `with` block, left as it was found."""

    def __init__(self, conf: Path = BINFMT_CONF, proc: Path = BINFMT_DIR) -> None:
        self.conf, self.proc = conf, proc
        self._mounted = self._registered = False

    def __enter__(self) -> Binfmt:
        if os.uname().machine == "aarch64":
            return self
        if not (self.proc / "register").exists():
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(self.proc)], check=True)
            self._mounted = True
        entry = self.proc / "qemu-aarch64"
        if not entry.exists():
            if not self.conf.is_file():
                raise BuildError(f"{self.conf} is missing: install Debian's qemu-user-static")
            (self.proc / "register").write_text(self.conf.read_text().strip())
            self._registered = True
        elif "enabled" not in entry.read_text().splitlines()[0]:
            raise BuildError(f"{entry} is registered but disabled; enable it with `echo 1 > {entry}`")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._registered:
            (self.proc / "qemu-aarch64").write_text("-1")
        if self._mounted:
            subprocess.run(["umount", str(self.proc)], check=False)


def mmdebstrap_command(rootfs: Rootfs, out: Path) -> list[str]:
    """The one mmdebstrap invocation that makes the rootfs tarball `out` (tested without running it)."""
    cmd = ["mmdebstrap", "--mode=root", f"--architectures={rootfs.architecture}", f"--variant={rootfs.variant}",
           f"--components={','.join(rootfs.components)}", "--dpkgopt=force-confold",
           *(f"--dpkgopt={opt}" for opt in rootfs.dpkg_options),
           f"--include={','.join(rootfs.packages)}",
           f"--essential-hook={rootfs.essential_hook}",
           f"--customize-hook={rootfs.customize_hook}",
           rootfs.suite, str(out)]
    return cmd + list(rootfs.mirrors)


def cached_tarball(cache: Path, rootfs: Rootfs) -> Path:
    return cache / "rootfs" / f"{rootfs.suite}-{rootfs.architecture}-{rootfs.key[:16]}.tar"


def ensure(rootfs: Rootfs, cache: Path, log: Callable[[str], None],
           run: Callable[[list[str], dict[str, str]], None] | None = None,
           detail: Callable[[str], None] = lambda _line: None) -> tuple[Path, bool]:
    """The cached rootfs tarball for `rootfs`, built first if missing. Returns (path, built_now)."""
    tar = cached_tarball(cache, rootfs)
    if tar.is_file():
        return tar, False
    missing = missing_tools(TOOLS)
    if missing:
        raise BuildError(f"building the rootfs needs {', '.join(missing)}: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        raise BuildError("building the rootfs runs mmdebstrap in root mode: run pikube image build as root")
    tar.parent.mkdir(parents=True, exist_ok=True)
    partial = tar.with_name(tar.stem + ".partial.tar")  # mmdebstrap picks the format by the suffix
    partial.unlink(missing_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(rootfs.source_date_epoch), "LC_ALL": "C.UTF-8"}
    cmd = mmdebstrap_command(rootfs, partial)
    log(f"rootfs: not cached ({tar.name}); mmdebstrap {rootfs.suite} {rootfs.architecture}, "
        f"{len(rootfs.packages)} packages under emulation (10-20 minutes)")
    started = time.monotonic()
    try:
        with Binfmt():
            (run or (lambda c, e: stream(c, e, detail, "mmdebstrap")))(cmd, env)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(tar)
    # How long it took, for bench/board.py's cold-build figure.
    tar.with_suffix(".json").write_text(json.dumps({"seconds": round(time.monotonic() - started, 1),
                                                    "packages": list(rootfs.packages)}) + "\n")
    return tar, True


def stream(cmd: list[str], env: dict[str, str], detail: Callable[[str], None], what: str,
           cwd: Path | None = None) -> None:
    """Run `cmd`, handing each output line to `detail`; a failure raises BuildError with the last lines."""
    tail: list[str] = []
    with subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            detail(line)
            tail = ([*tail, line.rstrip()])[-30:]
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n" + "\n".join(tail))
