"""write_atomic: old or new content after any failure, the final mode from the first byte, no temp left."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import fsutil
from core.fsutil import write_atomic


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under the umask it is parametrised with (indirect)."""
    value: int = request.param
    old = os.umask(value)
    try:
        yield value
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_writes_bytes_and_str(tmp_path: Path) -> None:
    write_atomic(tmp_path / "b", b"\x00\xffbytes")
    write_atomic(tmp_path / "s", "grüße\n")
    assert (tmp_path / "b").read_bytes() == b"\x00\xffbytes"
    assert (tmp_path / "s").read_bytes() == "grüße\n".encode()
    assert _leftovers(tmp_path) == []


def test_replaces_content_and_default_mode_is_private(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("old")
    os.chmod(path, 0o644)
    old_inode = os.stat(path).st_ino
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o600
    assert os.stat(path).st_ino != old_inode  # a new file renamed over the old, not rewritten in place


def test_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "ca.crt", b"cert", 0o644)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "ca.crt") == 0o644
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "token", b"secret", 0o600)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "token") == 0o600


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o600), (0, 0o600), (0o077, 0o644), (0o027, 0o640)],
                         indirect=["umask"], ids=["umask022-0600", "umask000-0600", "umask077-0644", "umask027-0640"])
def test_temp_file_has_final_mode_and_owner_before_first_byte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int, mode: int) -> None:
    """Every write lands in a file that is already exactly `mode` (never more open, not even for an instant)."""
    real_open, real_write = os.open, os.write
    created: list[tuple[str, int]] = []
    seen: list[tuple[int, int, int, int]] = []  # (mode, uid, gid, size) at each write

    def spy_open(path: str, flags: int, mode: int = 0o777, *a: object, **k: object) -> int:
        fd = real_open(path, flags, mode, *a, **k)  # type: ignore[arg-type]
        if flags & os.O_CREAT:
            created.append((os.fspath(path), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    def spy_write(fd: int, data: bytes | memoryview) -> int:
        st = os.fstat(fd)
        seen.append((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "write", spy_write)
    path = tmp_path / "serving.key"
    write_atomic(path, b"k" * 100_000, mode, uid=os.getuid(), gid=os.getgid())
    monkeypatch.undo()

    assert len(created) == 1
    tmp_name, created_mode = created[0]
    assert Path(tmp_name).parent == tmp_path and Path(tmp_name).name.startswith(".serving.key.")
    assert created_mode & ~mode == 0  # never laxer than the final mode, even at creation
    assert seen and seen[0][3] == 0
    assert all(m == mode and u == os.getuid() and g == os.getgid() for m, u, g, _ in seen)
    assert path.read_bytes() == b"k" * 100_000
    assert _mode(path) == mode


def test_partial_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    write_atomic(tmp_path / "f", b"0123456789" * 10)
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == b"0123456789" * 10


@pytest.mark.parametrize("failing", ["write", "fsync", "replace", "fchown"])
def test_failure_keeps_old_content_and_removes_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "admin.kubeconfig"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)

    def boom(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new", uid=0 if failing == "fchown" else None)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["admin.kubeconfig"]


def test_interrupt_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "ipam.json", "{}")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("durable", "expected"), [(True, ["fsync-file", "replace", "fsync-dir"]),
                                                   (False, ["replace"])])
def test_directory_is_fsynced_after_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool,
                                           expected: list[str]) -> None:
    path = tmp_path / "f"
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def spy_replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    write_atomic(path, b"x", 0o640, durable=durable)
    assert events == expected
    assert path.read_bytes() == b"x" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_missing_directory_fails_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "kubeconfig"
    with pytest.raises(FileNotFoundError):
        write_atomic(path, b"x")
    assert not (tmp_path / "a").exists()
    write_atomic(path, b"x", make_parents=True)
    assert path.read_bytes() == b"x"
    write_atomic(path, b"y", make_parents=True)  # existing directories are fine
    assert path.read_bytes() == b"y"


def test_make_parents_fsyncs_each_new_directory_into_its_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = fsutil.fsync_dir

    def spy(directory: Path | str) -> None:
        synced.append(os.fspath(directory))
        real(directory)

    monkeypatch.setattr(fsutil, "fsync_dir", spy)
    write_atomic(tmp_path / "a" / "b" / "f", b"x", make_parents=True)
    assert synced == [str(tmp_path), str(tmp_path / "a"), str(tmp_path / "a" / "b")]


def test_a_file_where_the_directory_should_be_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("not a dir")
    with pytest.raises(OSError):
        write_atomic(tmp_path / "a" / "f", b"x", make_parents=True)


def test_symlink_at_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    write_atomic(link, b"new")
    assert victim.read_bytes() == b"keep"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_planted_temp_names_are_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The temp file is created exclusively: a file or link someone left at its name is never written."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    planted = tmp_path / ".f.000000000000.tmp"
    planted.symlink_to(victim)
    monkeypatch.setattr(os, "urandom", lambda n: b"\0" * n)
    with pytest.raises(FileExistsError):
        write_atomic(tmp_path / "f", b"secret")
    assert victim.read_bytes() == b"keep"
    assert not (tmp_path / "f").exists()


def test_concurrent_writers_leave_one_whole_version(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    versions = [bytes([65 + i]) * 50_000 for i in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(path, v)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in versions
    assert _leftovers(tmp_path) == []


def test_chown_as_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = tmp_path / "config"
    write_atomic(path, b"x", uid=12345, gid=23456)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, _mode(path)) == (12345, 23456, 0o600)
    write_atomic(path, b"y", uid=54321)  # gid alone left as it comes
    assert os.stat(path).st_uid == 54321
