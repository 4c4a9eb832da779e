"""Atomic, durable file replacement: the one way pikube writes a file that must survive a power cut.

A Pi loses power without warning, and many of the files pikube writes are
secrets (private keys, kubeconfigs, join tokens). `write_atomic` therefore
guarantees that after a crash at any instant `path` holds either its old or
its new content (never an empty or half-written file), and that the content is
never readable by anyone the final `mode` does not allow, not even for an
instant:

- the data goes to a new temporary file in the same directory (so the rename
  stays on one filesystem), created exclusively (`O_EXCL`, a random name, no
  symlink followed) so nobody else can hold it open or have planted it;
- the file is created with `mode` (the umask can only take bits away) and set
  to exactly `mode`, and to its owner, before the first byte is written;
- the data is fsynced, the file renamed over `path`, and the directory fsynced
  so the rename itself is on the card when the call returns;
- on any failure before the rename the temporary file is removed.

Only the standard library is used: the agent imports this and stays small.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic"]

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(directory: Path | str) -> None:
    """Flush `directory`'s entries (a rename or a new name in it) to the disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """Create `directory` and its missing parents, each new entry fsynced into its parent."""
    if directory.is_dir():
        return
    missing: list[Path] = []
    d = directory
    while not d.is_dir():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue  # made concurrently: whoever made it makes it durable
        fsync_dir(d.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_atomic(path: Path | str, data: bytes | str, mode: int = 0o600, *, make_parents: bool = False,
                 uid: int | None = None, gid: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `data` (str is written as UTF-8), so that a power cut leaves the old or new file.

    The new file has exactly `mode` (the umask does not apply) and, when `uid`
    or `gid` is given, that owner, from before its first byte is written.
    `make_parents` creates missing directories (with the default mode, as
    `Path.mkdir` does) instead of failing. A symlink at `path` is replaced,
    not followed. `durable=False` skips the fsyncs, for files rebuilt from the
    API anyway (volume contents): they still appear whole to readers, and an SD
    card is spared two flushes per file.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else bytes(data)
    if make_parents:
        _make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, _OPEN_FLAGS, mode)
    try:
        try:
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)
            _write_all(fd, payload)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)
