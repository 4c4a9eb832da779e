"""configMap and secret volume files: their final mode from the first byte, and updates readers see whole.

On disk (configMaps) the files are written for real; the memory-backed volumes
(secrets) go through a fake of Docker's archive API that unpacks as Docker does
(an existing entry is removed first unless both are directories; a file is
created with the archive's mode), and once through a real engine.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.kubelet import volumes
from agent.kubelet.envs import ConfigError, Lookup
from agent.kubelet.volumes import DATA_LINK, SANDBOX_MOUNTS, Files, PodVolumes, VolumeManager, _write_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)  # through a link, as a reader finds it


def _seen(base: Path) -> dict[str, bytes]:
    """What a reader in the container finds through the top-level names."""
    out: dict[str, bytes] = {}
    for dirpath, _, names in os.walk(base, followlinks=True):
        rel = Path(dirpath).relative_to(base)
        if rel.parts and rel.parts[0].startswith(".."):
            continue
        for n in names:
            if not n.startswith(".") and (Path(dirpath) / n).exists():  # a dangling link reads as no file
                out[str(rel / n) if rel.parts else n] = (Path(dirpath) / n).read_bytes()
    return out


def _tree(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


# -- on disk (configMap volumes) ---------------------------------------------------------------


def test_files_get_their_final_mode_through_write_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is written by write_atomic (created with its mode before its first byte) with the pod's mode."""
    calls: list[tuple[str, int]] = []
    real = volumes.write_atomic

    def spy(path: Path | str, data: bytes | str, mode: int = 0o600, **kw: Any) -> None:
        calls.append((Path(path).name, mode))
        real(path, data, mode, **kw)

    monkeypatch.setattr(volumes, "write_atomic", spy)
    base = tmp_path / "cfg"
    files: Files = {"token": (b"t", 0o400), "app.conf": (b"c", 0o644), "sub/dir/x": (b"x", 0o640)}
    umask = os.umask(0o077)  # the modes are exact whatever the agent's umask
    try:
        _write_dir(base, files)
    finally:
        os.umask(umask)
    assert sorted(calls) == [("app.conf", 0o644), ("token", 0o400), ("x", 0o640)]
    assert _mode(base / "token") == 0o400 and _mode(base / "app.conf") == 0o644  # through the links
    assert _mode(base / "sub" / "dir" / "x") == 0o640
    gen = base / os.readlink(base / DATA_LINK)
    assert _mode(gen) == 0o755 and _mode(gen / "sub") == 0o755 and _mode(gen / "sub" / "dir") == 0o755
    assert os.readlink(base / "token") == "..data/token" and os.readlink(base / "sub") == "..data/sub"
    assert _seen(base) == {"token": b"t", "app.conf": b"c", "sub/dir/x": b"x"}
    assert not [p for p in base.rglob("*.tmp")]


def test_modes_as_the_kubelet_sets_them() -> None:
    data = {"a": b"1", "b": b"2"}
    assert volumes._items(data, {}) == {"a": (b"1", 0o644), "b": (b"2", 0o644)}
    assert volumes._items(data, {"defaultMode": 0o400}) == {"a": (b"1", 0o400), "b": (b"2", 0o400)}
    assert volumes._items(data, {"defaultMode": 0}) == {"a": (b"1", 0), "b": (b"2", 0)}  # 0 is a mode, not unset
    items = {"defaultMode": 0o440, "items": [{"key": "a", "path": "x/a", "mode": 0o600}, {"key": "b", "path": "b"}]}
    assert volumes._items(data, items) == {"x/a": (b"1", 0o600), "b": (b"2", 0o440)}
    with pytest.raises(ConfigError, match="out of range"):
        volumes._items(data, {"defaultMode": 0o1777})


@pytest.mark.parametrize("path", ["../../etc/cron.d/x", "/etc/passwd", "a/../../b", "..data", "a//b", "./a"])
def test_a_path_outside_the_volume_is_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        volumes._items({"k": b"v"}, {"items": [{"key": "k", "path": path}]})
    with pytest.raises(ConfigError, match="not allowed"):
        volumes._items({path: b"v"}, {})
    with pytest.raises(ConfigError, match="not allowed"):
        volumes._items({"": b"v"}, {})


def test_an_update_switches_the_whole_set_and_removes_what_went(tmp_path: Path) -> None:
    base = tmp_path / "cfg"
    _write_dir(base, {"a": (b"1", 0o644), "gone": (b"g", 0o644), "sub/b": (b"2", 0o644)})
    first = os.readlink(base / DATA_LINK)
    _write_dir(base, {"a": (b"one", 0o600), "sub/b": (b"2", 0o644), "new": (b"n", 0o644)})
    second = os.readlink(base / DATA_LINK)
    assert second != first and not (base / first).exists()  # the old generation is gone
    assert _seen(base) == {"a": b"one", "sub/b": b"2", "new": b"n"}
    assert _mode(base / "a") == 0o600
    assert _tree(base) == sorted([DATA_LINK, second, f"{second}/a", f"{second}/sub", f"{second}/sub/b",
                                  f"{second}/new", "a", "sub", "new"])


def test_nothing_is_rewritten_when_nothing_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "cfg"
    files: Files = {"a": (b"1", 0o644), "sub/b": (b"2", 0o600)}
    _write_dir(base, files)
    gen = os.readlink(base / DATA_LINK)

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("rewrote an unchanged volume")

    monkeypatch.setattr(volumes, "write_atomic", refuse)
    _write_dir(base, dict(files))
    assert os.readlink(base / DATA_LINK) == gen
    monkeypatch.undo()
    _write_dir(base, {"a": (b"1", 0o644), "sub/b": (b"2", 0o644)})  # a mode alone is a change
    assert os.readlink(base / DATA_LINK) != gen and _mode(base / "sub" / "b") == 0o644


def test_a_failed_write_leaves_the_old_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "cfg"
    old: Files = {"a": (b"old-a", 0o644), "b": (b"old-b", 0o600)}
    _write_dir(base, old)
    gen = os.readlink(base / DATA_LINK)
    before = _tree(base)
    real = volumes.write_atomic
    count = 0

    def fail_second(path: Path | str, data: bytes | str, mode: int = 0o600, **kw: Any) -> None:
        nonlocal count
        count += 1
        if count == 2:
            raise OSError(28, "No space left on device")
        real(path, data, mode, **kw)

    monkeypatch.setattr(volumes, "write_atomic", fail_second)
    with pytest.raises(OSError, match="No space"):
        _write_dir(base, {"a": (b"new-a", 0o644), "b": (b"new-b", 0o600), "c": (b"new-c", 0o644)})
    assert os.readlink(base / DATA_LINK) == gen
    assert _seen(base) == {"a": b"old-a", "b": b"old-b"}
    assert _tree(base) == before  # the half-written generation is gone too


def test_an_older_plain_layout_is_taken_over(tmp_path: Path) -> None:
    """A pod that kept running across an agent upgrade has plain files and directories in its volume."""
    base = tmp_path / "cfg"
    (base / "sub").mkdir(parents=True)
    (base / "a").write_bytes(b"plain")
    (base / "sub" / "b").write_bytes(b"plain")
    (base / ".a.tmp").write_bytes(b"left over")
    _write_dir(base, {"a": (b"1", 0o644), "sub/b": (b"2", 0o644)})
    assert _seen(base) == {"a": b"1", "sub/b": b"2"}
    assert (base / "a").is_symlink() and (base / "sub").is_symlink() and not (base / ".a.tmp").exists()


def test_every_step_of_an_update_shows_readers_one_generation(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """After each file operation of an update, what the top-level names give is all old or all new."""
    base = tmp_path / "cfg"
    old: Files = {"a": (b"old", 0o644), "sub/b": (b"old", 0o644), "gone": (b"old", 0o644)}
    new: Files = {"a": (b"new", 0o644), "sub/b": (b"new", 0o644), "added": (b"new", 0o644)}
    _write_dir(base, old)
    views: list[dict[str, bytes]] = []

    def watched(name: str) -> None:
        real = getattr(volumes, name)

        def step(*a: Any, **k: Any) -> Any:
            out = real(*a, **k)
            views.append(_seen(base))
            return out

        monkeypatch.setattr(volumes, name, step)

    for name in ("write_atomic", "_make_dir", "_replace_with_link", "_remove"):
        watched(name)
    _write_dir(base, new)
    assert len(views) > 6
    for view in views:
        assert len(set(view.values())) == 1, view  # never old and new side by side
        assert set(view) <= {"a", "sub/b", "gone"} if b"old" in view.values() else set(view) <= set(new)
        assert {"a", "sub/b"} <= set(view)  # a key in both sets never disappears on disk
    assert views[-1] == {"a": b"new", "sub/b": b"new", "added": b"new"}


def test_concurrent_readers_find_only_whole_generations(tmp_path: Path) -> None:
    """A reader that opens `..data` and reads the generation it got, while `..data` stays on it, gets it whole."""
    base = tmp_path / "cfg"

    def generation(n: int) -> dict[str, bytes]:
        keys = ["a", "b", "sub/c"] + (["odd"] if n % 2 else [])
        return {k: str(n).encode() * 4096 for k in keys}

    def read_tree(dfd: int, prefix: str = "") -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for name in os.listdir(dfd):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            fd = os.open(name, os.O_RDONLY | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0), dir_fd=dfd)
            try:
                if stat.S_ISDIR(st.st_mode):
                    out.update(read_tree(fd, f"{prefix}{name}/"))
                else:
                    with os.fdopen(os.dup(fd), "rb") as f:
                        out[prefix + name] = f.read()
            finally:
                os.close(fd)
        return out

    _write_dir(base, {k: (v, 0o644) for k, v in generation(0).items()})
    stop = threading.Event()
    whole: list[int] = []
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            fd = os.open(base / DATA_LINK, os.O_RDONLY | os.O_DIRECTORY)  # never missing on disk
            try:
                try:
                    got = read_tree(fd)
                except FileNotFoundError:
                    continue
                # Still the live generation: it was never touched while being read (a generation is
                # written before `..data` points to it and removed only after `..data` left it).
                if os.stat(base / DATA_LINK).st_ino != os.fstat(fd).st_ino:
                    continue
            finally:
                os.close(fd)
            n = int(got.get("a", b"-1")[:1])
            if got != generation(n):
                problems.append(f"not one whole generation: { {k: v[:3] for k, v in got.items()} }")
            whole.append(n)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 80):
            _write_dir(base, {k: (v, 0o644) for k, v in generation(n % 10).items()})
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:5]
    assert len(set(whole)) > 1


# -- memory-backed (secret) volumes, through the archive API -------------------------------------


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


class FakeArchiveApi:
    """Docker's container archive endpoints over a directory standing for the pause container's mounts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.puts: list[bytes] = []

    def _dir(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def put_archive(self, container: str, path: str, data: bytes) -> bool:
        self.puts.append(data)
        dest = self._dir(path)
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for info in tar:
                target = dest / info.name
                if (target.exists() or target.is_symlink()) and not (info.isdir() and target.is_dir()
                                                                    and not target.is_symlink()):
                    _remove(target)
                if info.isdir():
                    target.mkdir(exist_ok=True)
                    os.chmod(target, info.mode)
                elif info.issym():
                    os.symlink(info.linkname, target)
                else:
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, info.mode)
                    f = tar.extractfile(info)
                    os.write(fd, f.read() if f is not None else b"")
                    os.fchmod(fd, info.mode)
                    os.close(fd)
        return True

    def get_archive(self, container: str, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        dest = self._dir(path)
        dest.mkdir(parents=True, exist_ok=True)  # the volume's mount point
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(dest, arcname=dest.name)
        return iter([buf.getvalue()]), {"name": dest.name}


class FakeRuntime:
    node = "board"

    def __init__(self, api: FakeArchiveApi) -> None:
        self.api = api


def _manager(tmp_path: Path, api: FakeArchiveApi) -> VolumeManager:
    lookup = Lookup(config_map=lambda ns, name: None, secret=lambda ns, name: None)
    return VolumeManager(tmp_path / "data", FakeRuntime(api), lookup)  # type: ignore[arg-type]


def _archive_modes(data: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {i.name: stat.S_IMODE(i.mode) for i in tar if i.isreg() and i.size}


def test_secret_files_are_in_the_archive_with_their_final_mode(tmp_path: Path) -> None:
    api = FakeArchiveApi(tmp_path / "box")
    vols = PodVolumes(memory={"v": {"password": (b"s3cret", 0o400), "dir/key": (b"k", 0o600)}})
    _manager(tmp_path, api).populate("box1", vols)
    assert len(api.puts) == 1
    assert _archive_modes(api.puts[0]) == {"..a/password": 0o400, "..a/dir/key": 0o600}
    mount = api._dir(f"{SANDBOX_MOUNTS}/v")
    assert _seen(mount) == {"password": b"s3cret", "dir/key": b"k"}
    assert _mode(mount / "password") == 0o400 and os.readlink(mount / DATA_LINK) == "..a"


def test_an_empty_dir_in_memory_is_left_to_the_pod(tmp_path: Path) -> None:
    api = FakeArchiveApi(tmp_path / "box")
    _manager(tmp_path, api).populate("box1", PodVolumes(memory={"scratch": None}))
    assert api.puts == []


def test_a_secret_update_swaps_the_whole_set_and_wipes_the_old(tmp_path: Path) -> None:
    api = FakeArchiveApi(tmp_path / "box")
    manager = _manager(tmp_path, api)
    mount = api._dir(f"{SANDBOX_MOUNTS}/v")
    manager.populate("box1", PodVolumes(memory={"v": {"a": (b"1", 0o644), "gone": (b"old secret", 0o644)}}))
    manager.populate("box1", PodVolumes(memory={"v": {"a": (b"1", 0o644), "gone": (b"old secret", 0o644)}}))
    assert len(api.puts) == 1  # unchanged: nothing sent
    manager.populate("box1", PodVolumes(memory={"v": {"a": (b"2", 0o600), "new": (b"n", 0o644)}}))
    assert len(api.puts) == 2
    assert os.readlink(mount / DATA_LINK) == "..b"
    assert _seen(mount) == {"a": b"2", "new": b"n"}  # `gone` dangles: opening it fails, as if removed
    assert (mount / "gone").is_symlink() and not (mount / "gone").exists()
    assert (mount / "..a").is_file() and (mount / "..a").stat().st_size == 0  # no old secret left behind
    manager.populate("box1", PodVolumes(memory={"v": {"a": (b"3", 0o644)}}))
    assert os.readlink(mount / DATA_LINK) == "..a" and _seen(mount) == {"a": b"3"}
    assert (mount / "..b").is_file() and (mount / "..b").stat().st_size == 0


def test_a_restarted_agent_reads_the_volume_back(tmp_path: Path) -> None:
    api = FakeArchiveApi(tmp_path / "box")
    files: Files = {"a": (b"1", 0o640), "d/b": (b"2", 0o644)}
    _manager(tmp_path, api).populate("box1", PodVolumes(memory={"v": files}))
    _manager(tmp_path, api).populate("box1", PodVolumes(memory={"v": dict(files)}))
    assert len(api.puts) == 1  # the same content is already there: left alone
    _manager(tmp_path, api).populate("box1", PodVolumes(memory={"v": {"a": (b"changed", 0o640)}}))
    mount = api._dir(f"{SANDBOX_MOUNTS}/v")
    assert os.readlink(mount / DATA_LINK) == "..b"  # written beside the live generation, not over it
    assert _seen(mount) == {"a": b"changed"}


def test_prepare_keeps_secret_files_for_the_sandbox_and_writes_config_maps(tmp_path: Path) -> None:
    api = FakeArchiveApi(tmp_path / "box")
    calls: list[str] = []
    api_any: Any = api
    api_any.inspect_volume = lambda name: calls.append(name)
    lookup = Lookup(config_map=lambda ns, name: {"conf": "c"}, secret=lambda ns, name: {"pw": "p"})
    manager = VolumeManager(tmp_path / "data", FakeRuntime(api), lookup)  # type: ignore[arg-type]
    pod = {"metadata": {"uid": "u1", "namespace": "ns"}, "spec": {"volumes": [
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 0o440}},
        {"name": "sec", "secret": {"secretName": "s", "items": [{"key": "pw", "path": "x/pw", "mode": 0o400}]}},
        {"name": "mem", "emptyDir": {"medium": "Memory"}}]}}
    vols = manager.prepare(pod)
    cfg = Path(vols.sources["cfg"])
    assert _seen(cfg) == {"conf": b"c"} and _mode(cfg / "conf") == 0o440
    assert vols.memory == {"pikube-u1-sec": {"x/pw": (b"p", 0o400)}, "pikube-u1-mem": None}
    assert vols.read_only == {"cfg", "sec"}


# -- a real engine ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_secret_volume_in_a_real_container(docker_engine: Any, docker_client: Any, dev_images: Any,
                                           container_labels: dict[str, str], tmp_path: Path) -> None:
    from agent.runtime.docker import DockerRuntime

    runtime = DockerRuntime(host=docker_engine.host, node=f"voltest-{uuid.uuid4().hex[:8]}")
    manager = VolumeManager(tmp_path, runtime, Lookup(config_map=lambda ns, n: None, secret=lambda ns, n: None))
    uid = uuid.uuid4().hex[:12]
    vol = manager._tmpfs_volume(uid, "sec", None)
    box = docker_client.containers.run(dev_images.busybox, ["sleep", "600"], detach=True, labels=container_labels,
                                       volumes={vol: {"bind": f"{SANDBOX_MOUNTS}/{vol}", "mode": "rw"}})
    try:
        def sh(script: str) -> str:
            code, out = box.exec_run(["sh", "-c", script])
            assert code == 0, out
            return str(out.decode())

        where = f"{SANDBOX_MOUNTS}/{vol}"

        def listing() -> str:
            return sh(f"cd {where} && for f in pw d/k; do [ -e $f ] && stat -L -c '%a %n' $f && cat $f; echo; done")

        manager.populate(box.id, PodVolumes(memory={vol: {"pw": (b"one", 0o400), "d/k": (b"k", 0o640)}}), force=True)
        assert listing() == "400 pw\none\n640 d/k\nk\n"
        assert sh(f"readlink {where}/..data").strip() == "..a"
        manager.populate(box.id, PodVolumes(memory={vol: {"pw": (b"two", 0o600)}}))
        assert listing() == "600 pw\ntwo\n\n"
        assert sh(f"readlink {where}/..data").strip() == "..b"
        assert sh(f"stat -c '%s %F' {where}/..a").strip() == "0 regular empty file"
        again = VolumeManager(tmp_path, runtime, manager.lookup)  # a restarted agent
        again.populate(box.id, PodVolumes(memory={vol: {"pw": (b"two", 0o600)}}))
        assert sh(f"readlink {where}/..data").strip() == "..b"  # unchanged: left alone
    finally:
        box.remove(force=True)
        with contextlib.suppress(Exception):
            manager.cleanup(uid)
        runtime.close()
