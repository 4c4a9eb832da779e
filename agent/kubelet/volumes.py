"""Pod volumes: emptyDir, hostPath, configMap, secret (on tmpfs) and claims, and how containers mount them.

Disk-backed volumes are directories under `DATA/pods/<uid>/volumes/`, bind-mounted
into the containers. Memory-backed ones (secrets, emptyDir with medium Memory) are
Docker `local` volumes of type tmpfs, so they live in the Docker engine's mount
namespace whatever namespace the agent runs in (a simulated board's `ip netns
exec` gives the agent a private one); the pause container mounts them for the
pod's lifetime and the agent fills them through it (`put_archive`), so their
contents never touch the SD card.

A claim (`persistentVolumeClaim`) is mounted from its bound PersistentVolume:
a local-path directory (made on first use, mode 0777, and only as a
`pvc-<uid>_<ns>_<claim>` entry of this board's local-path directory — the
master may also ask for one to be removed, and nothing else is), a hostPath
one, or a `local` one's existing path.

configMap and secret volumes are laid out as the kubelet lays them out, so that
an update is atomic for the container's readers: the files live in a generation
directory (`..a` or `..b`), `..data` links to the current one, and each
top-level name is a link `NAME -> ..data/NAME`. An update fills the other
generation, then replaces `..data`, then drops the old generation, so a reader
resolving `..data` finds the whole old set or the whole new one, never a mix.
On disk (configMaps) the replacement is a rename. Docker's archive API, through
which the memory-backed ones (secrets) are filled, cannot rename: it removes the
old `..data` link and makes the new one, so for that instant a reader finds no
file, though still never a mix; and as it cannot delete either, the dropped
generation is overwritten by an empty file, and the link of a removed key is
left dangling (opening it fails as if it were gone). Every file has its final
mode from its first byte: on disk through `core.fsutil.write_atomic`, in an
archive because Docker creates each file with the mode the archive gives it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from agent.kubelet.envs import ConfigError, Lookup, field_value
from agent.runtime import labels as L
from agent.runtime.docker import DockerRuntime, RuntimeError_
from core import wellknown
from core.fsutil import write_atomic

Obj = dict[str, Any]
# A local-path volume's directory: pvc-<claim uid>_<namespace>_<claim> (names are DNS subdomains).
LOCAL_PATH_NAME = re.compile(r"pvc-[0-9a-f-]{36}_[a-z0-9-]+_[a-z0-9.-]+")
_PV_FIELDS = {"capacity", "accessModes", "claimRef", "persistentVolumeReclaimPolicy", "storageClassName",
              "mountOptions", "volumeMode", "nodeAffinity", "volumeAttributesClassName"}
SANDBOX_MOUNTS = "/.pikube/volumes"
Files = dict[str, tuple[bytes, int]]  # path in the volume -> (content, mode)
DATA_LINK = "..data"
GENERATIONS = ("..a", "..b")
DIR_MODE = 0o755


class VolumeError(ConfigError):
    """Volume `volume` cannot be set up; the pod waits in ContainerCreating with a FailedMount event."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume

    @property
    def event_message(self) -> str:
        """The kubelet's words for a FailedMount event."""
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self}'


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError_):
        return exc.detail
    if isinstance(exc, requests.RequestException):  # the Docker SDK's errors are requests' errors
        return str(getattr(exc, "explanation", None) or exc)
    return str(exc)


@dataclass
class PodVolumes:
    """Where each of a pod's volumes comes from, and what the memory-backed ones must hold."""

    sources: dict[str, str] = field(default_factory=dict)  # volume name -> host path or docker volume name
    # docker volume name -> the files pikube keeps in it (None: an emptyDir, the pod's own)
    memory: dict[str, Files | None] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)  # configMap and secret volumes, as on Kubernetes

    def sandbox_binds(self) -> list[str]:
        return [f"{vol}:{SANDBOX_MOUNTS}/{vol}" for vol in sorted(self.memory)]


def _mode(value: Any, default: int) -> int:
    if value is None:
        return default
    mode = int(value)
    if not 0 <= mode <= 0o777:
        raise ConfigError(f"file mode {mode:#o} is out of range (0 to 0777)")
    return mode


def _check_path(path: str) -> str:
    """`path` when it names a file inside the volume; no `..` anywhere, as on Kubernetes."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".") or p.startswith("..") for p in parts):
        raise ConfigError(f'volume file path "{path}" is not allowed: it must be relative, '
                          f"with no empty, '.' or '..'-prefixed part")
    return path


def _items(data: dict[str, bytes], src: Obj, kind: str = "configmap", key_kind: str = "config") -> Files:
    default = _mode(src.get("defaultMode"), 0o644)
    items = src.get("items")
    if not items:
        return {_check_path(k): (v, default) for k, v in data.items()}
    out: Files = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if src.get("optional"):
                continue
            raise ConfigError(f"{kind} references non-existent {key_kind} key: {key}")
        out[_check_path(str(item.get("path") or key))] = (data[key], _mode(item.get("mode"), default))
    return out


def _tops(files: Files) -> frozenset[str]:
    return frozenset(name.split("/", 1)[0] for name in files)


@dataclass(frozen=True)
class _Live:
    """What a configMap or secret volume holds now."""

    generation: str | None = None  # where `..data` points, if it points to a generation
    files: Files = field(default_factory=dict)  # the files of that generation
    links: frozenset[str] = frozenset()  # top-level names that link into `..data`
    others: frozenset[str] = frozenset()  # any other top-level entry (stale, or an older layout)

    def serves(self, files: Files) -> bool:
        """True when readers already find exactly `files` (a dangling link of a removed key aside)."""
        return self.generation is not None and self.files == files and _tops(files) <= self.links

    def next_generation(self) -> str:
        return GENERATIONS[1] if self.generation == GENERATIONS[0] else GENERATIONS[0]


def _link_target(name: str) -> str:
    return f"{DATA_LINK}/{name}"


class VolumeManager:
    def __init__(self, data_dir: Path, runtime: DockerRuntime, lookup: Lookup,
                 local_path_dir: Path | None = None) -> None:
        self.root = data_dir / "pods"
        self.local_path_dir = local_path_dir or data_dir / "storage"
        self.runtime, self.lookup = runtime, lookup
        self._filled: dict[str, tuple[str, _Live]] = {}  # docker volume -> (sandbox id, what it holds)

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    def volume_name(self, uid: str, name: str) -> str:
        return f"pikube-{uid}-{name}"

    def prepare(self, pod: Obj) -> PodVolumes:
        """Make every volume of `pod` ready; `VolumeError` names the first that cannot be, and why."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid, ns = str(meta["uid"]), str(meta.get("namespace", "default"))
        out = PodVolumes()
        for vol in spec.get("volumes") or []:
            name = str(vol.get("name", ""))
            try:
                self._prepare_one(pod, uid, ns, vol, name, out)
            except ConfigError as exc:
                raise VolumeError(name, str(exc)) from exc
            except (OSError, ValueError, RuntimeError_, requests.RequestException) as exc:
                # a file that cannot be written, a value that cannot be encoded, Docker refusing a volume
                raise VolumeError(name, _reason(exc)) from exc
        return out

    def _projected(self, pod: Obj, ns: str, src: Obj) -> Files:
        """A projected volume's files: service account token, config map, secret and downward API sources, on
        tmpfs like a secret (the token is a credential); the token is renewed by `lookup.sa_token`."""
        default = _mode(src.get("defaultMode"), 0o644)
        out: Files = {}
        for source in src.get("sources") or []:
            if not isinstance(source, dict):
                continue
            if "serviceAccountToken" in source:
                t = source["serviceAccountToken"] or {}
                token = self.lookup.sa_token(pod, str(t.get("audience") or ""), int(t.get("expirationSeconds")
                                                                                    or 3600))
                out[_check_path(str(t.get("path") or "token"))] = (token.encode(), default)
            elif "configMap" in source or "secret" in source:
                kind, key_kind, get = ("configmap", "config", self.lookup.config_map) if "configMap" in source \
                    else ("secret", "secret", self.lookup.secret)
                ref = source.get("configMap") or source.get("secret") or {}
                data = get(ns, str(ref.get("name", "")))
                if data is None and not ref.get("optional"):
                    raise ConfigError(f'{kind} "{ref.get("name")}" not found')
                out.update(_items({k: v.encode() for k, v in (data or {}).items()}, {**ref, "defaultMode": default},
                                  kind, key_kind))
            elif "downwardAPI" in source:
                for item in (source["downwardAPI"] or {}).get("items") or []:
                    field = item.get("fieldRef") or {}
                    if not field:
                        raise ConfigError("downwardAPI: only fieldRef items are supported by pikube")
                    value = field_value(pod, str(field.get("fieldPath") or ""))
                    out[_check_path(str(item.get("path") or ""))] = (value.encode(), _mode(item.get("mode"), default))
            else:
                kinds = [k for k in source]
                raise ConfigError(f'projected source {", ".join(kinds) or "unknown"} is not supported by pikube')
        return out

    def _prepare_one(self, pod: Obj, uid: str, ns: str, vol: Obj, name: str, out: PodVolumes) -> None:
        base = self.pod_dir(uid) / "volumes" / name
        if "emptyDir" in vol:
            if (vol.get("emptyDir") or {}).get("medium") == "Memory":
                docker_vol = self._tmpfs_volume(uid, name, (vol.get("emptyDir") or {}).get("sizeLimit"))
                out.sources[name] = docker_vol
                out.memory[docker_vol] = None
            else:
                base.mkdir(parents=True, exist_ok=True)
                os.chmod(base, 0o777)
                out.sources[name] = str(base)
        elif "hostPath" in vol:
            out.sources[name] = self._host_path(vol["hostPath"])
        elif "persistentVolumeClaim" in vol:
            src = vol["persistentVolumeClaim"] or {}
            out.sources[name] = self._claim_path(self.lookup.claim_volume(ns, str(src.get("claimName") or "")))
            if src.get("readOnly"):
                out.read_only.add(name)
        elif "configMap" in vol:
            src = vol["configMap"]
            data = self.lookup.config_map(ns, str(src.get("name", "")))
            if data is None and not src.get("optional"):
                raise ConfigError(f'configmap "{src.get("name")}" not found')
            files = _items({k: v.encode() for k, v in (data or {}).items()}, src, "configmap", "config")
            _write_dir(base, files)
            out.sources[name] = str(base)
            out.read_only.add(name)
        elif "projected" in vol:
            files = self._projected(pod, ns, vol["projected"] or {})
            docker_vol = self._tmpfs_volume(uid, name, None)
            out.sources[name] = docker_vol
            out.memory[docker_vol] = files
            out.read_only.add(name)
        elif "secret" in vol:
            src = vol["secret"]
            data = self.lookup.secret(ns, str(src.get("secretName", "")))
            if data is None and not src.get("optional"):
                raise ConfigError(f'secret "{src.get("secretName")}" not found')
            files = _items({k: v.encode() for k, v in (data or {}).items()}, src, "secret", "secret")
            docker_vol = self._tmpfs_volume(uid, name, None)
            out.sources[name] = docker_vol
            out.memory[docker_vol] = files
            out.read_only.add(name)
        else:
            kinds = [k for k in vol if k != "name"]
            raise ConfigError(f'type {", ".join(kinds) or "unknown"} is not supported by pikube')

    def _claim_path(self, pv: Obj) -> str:
        """Where a claim's volume is on this board: a local-path directory (made on first use, writable by any
        container user, as k3s' provisioner makes it), a hostPath, or a `local` volume's existing path."""
        spec, meta = pv.get("spec") or {}, pv.get("metadata") or {}
        name = meta.get("name")
        if (meta.get("annotations") or {}).get(wellknown.PROVISIONED_BY_ANNOTATION) == wellknown.LOCAL_PATH_PROVISIONER:
            path = Path(str((spec.get("hostPath") or {}).get("path") or ""))
            if path.parent != self.local_path_dir or not LOCAL_PATH_NAME.fullmatch(path.name):
                raise ConfigError(f'local-path volume "{name}" is at {path}, not in this board\'s local-path '
                                  f"directory {self.local_path_dir}")
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o777)
            return str(path)
        if "hostPath" in spec:
            return self._host_path(spec["hostPath"] or {})
        if "local" in spec:
            path = Path(str((spec["local"] or {}).get("path") or ""))
            if not path.exists():
                raise ConfigError(f'local volume "{name}": path {path} does not exist on this board')
            return str(path)
        kinds = [k for k in spec if k not in _PV_FIELDS]
        raise ConfigError(f'persistentvolume "{name}" is of type {", ".join(kinds) or "unknown"}, which pikube '
                          "does not mount")

    def remove_local_path(self, directory: str) -> bool:
        """Remove a released local-path volume's directory (only a `pvc-…` entry of the local-path directory);
        False when the name is not one; True when it is gone, also when it was never made."""
        if not LOCAL_PATH_NAME.fullmatch(directory):
            return False
        path = self.local_path_dir / directory
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        return True

    def _host_path(self, src: Obj) -> str:
        path, kind = Path(str(src.get("path", ""))), str(src.get("type") or "")
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        elif kind == "Directory" and not path.is_dir():
            raise ConfigError(f"hostPath type check failed: {path} is not a directory")
        elif kind == "File" and not path.is_file():
            raise ConfigError(f"hostPath type check failed: {path} is not a file")
        return str(path)

    def _tmpfs_volume(self, uid: str, name: str, size: Any) -> str:
        vol = self.volume_name(uid, name)
        opts = "mode=0755" + (f",size={_size(size)}" if size else "")
        try:
            self.runtime.api.inspect_volume(vol)
        except Exception:
            self.runtime.api.create_volume(vol, driver="local",
                                           driver_opts={"type": "tmpfs", "device": "tmpfs", "o": opts},
                                           labels={L.NODE: self.runtime.node, L.POD_UID: uid})
        return vol

    def populate(self, sandbox_id: str, volumes: PodVolumes, force: bool = False) -> None:
        """Put the memory-backed volumes' files in place through the (running) pause container.

        What a volume holds is remembered per sandbox; `force`, a new sandbox or a
        restarted agent reads it back from the volume instead (a secret that did not
        change is then left alone).
        """
        for vol, files in volumes.memory.items():
            if files is None:
                continue
            known = self._filled.get(vol)
            if force or known is None or known[0] != sandbox_id:
                live = self._read_memory_volume(sandbox_id, vol)
            else:
                live = known[1]
            if not live.serves(files):
                self.runtime.api.put_archive(sandbox_id, f"{SANDBOX_MOUNTS}/{vol}", _update_tar(live, files))
                live = _Live(live.next_generation(), dict(files), live.links | _tops(files))
            self._filled[vol] = (sandbox_id, live)

    def _read_memory_volume(self, sandbox_id: str, vol: str) -> _Live:
        stream, _ = self.runtime.api.get_archive(sandbox_id, f"{SANDBOX_MOUNTS}/{vol}")
        return _live_in_archive(b"".join(stream))

    def cleanup(self, uid: str) -> None:
        """Remove everything of pod `uid` (its containers must be gone)."""
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)
        self._remove_docker_volumes(uid)

    def _remove_docker_volumes(self, uid: str) -> None:
        found = self.runtime.api.volumes(filters={"label": [f"{L.NODE}={self.runtime.node}", f"{L.POD_UID}={uid}"]})
        for vol in (found or {}).get("Volumes") or []:
            with contextlib.suppress(Exception):
                self.runtime.api.remove_volume(vol["Name"], force=True)
            self._filled.pop(vol["Name"], None)

    def known_uids(self) -> set[str]:
        uids = {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()
        found = self.runtime.api.volumes(filters={"label": [f"{L.NODE}={self.runtime.node}"]})
        for vol in (found or {}).get("Volumes") or []:
            uid = (vol.get("Labels") or {}).get(L.POD_UID)
            if uid:
                uids.add(uid)
        return uids

    def binds(self, container: Obj, volumes: PodVolumes) -> list[str]:
        out = []
        for m in container.get("volumeMounts") or []:
            source = volumes.sources.get(str(m.get("name", "")))
            if source is None:
                raise ConfigError(f'volume "{m.get("name")}" is mounted but not defined in the pod')
            sub = str(m.get("subPath") or "")
            if sub:
                if source.startswith("/"):
                    target = Path(source) / sub
                    if not target.exists():
                        target.mkdir(parents=True, exist_ok=True)
                    source = str(target)
                else:
                    raise ConfigError(f'subPath is not supported on memory-backed volume "{m.get("name")}"')
            mode = "ro" if m.get("readOnly") or m.get("name") in volumes.read_only else "rw"
            out.append(f"{source}:{m.get('mountPath')}:{mode}")
        return out


def _size(value: Any) -> int:
    from core.kube.quantity import bytes_value

    return int(bytes_value(str(value)))


def _update_tar(live: _Live, files: Files) -> bytes:
    """An archive that, unpacked by Docker over a volume holding `live`, makes it hold `files`.

    Docker unpacks in order, and replaces an existing entry (a non-empty
    directory too) unless both are directories: the empty file first wipes
    whatever an earlier, interrupted update left in the new generation.
    """
    gen, old = live.next_generation(), live.generation
    buf = io.BytesIO()
    now = time.time()

    def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.linkname, info.size = kind, mode, now, link, len(data)
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add(gen, tarfile.REGTYPE, 0)
        add(gen, tarfile.DIRTYPE, DIR_MODE)
        made: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")
            for i in range(1, len(parts)):
                sub = "/".join(parts[:i])
                if sub not in made:
                    made.add(sub)
                    add(f"{gen}/{sub}", tarfile.DIRTYPE, DIR_MODE)
            data, mode = files[name]
            add(f"{gen}/{name}", tarfile.REGTYPE, mode, data)
        add(DATA_LINK, tarfile.SYMTYPE, 0o777, link=gen)
        for top in sorted(_tops(files) - live.links):
            add(top, tarfile.SYMTYPE, 0o777, link=_link_target(top))
        if old is not None:
            add(old, tarfile.REGTYPE, 0)  # the old generation's data gone (Docker cannot delete)
    return buf.getvalue()


def _live_in_archive(data: bytes) -> _Live:
    """What a volume holds, from Docker's archive of its directory (whose name prefixes every entry)."""
    entries: dict[str, tarfile.TarInfo] = {}
    content: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            _, _, name = info.name.partition("/")
            if not name:
                continue
            entries[name] = info
            if info.isreg():
                f = tar.extractfile(info)
                content[name] = f.read() if f is not None else b""
    top = {name: info for name, info in entries.items() if "/" not in name}
    link = top.get(DATA_LINK)
    gen = link.linkname if link is not None and link.issym() and link.linkname in GENERATIONS else None
    files: Files = {}
    if gen is not None and gen in top and top[gen].isdir():
        prefix = f"{gen}/"
        files = {name[len(prefix):]: (content[name], stat.S_IMODE(info.mode))
                 for name, info in entries.items() if name.startswith(prefix) and info.isreg()}
    links = frozenset(n for n, info in top.items()
                      if not n.startswith("..") and info.issym() and info.linkname == _link_target(n))
    others = frozenset(n for n in top if n not in links and n != DATA_LINK and n != gen)
    return _Live(gen, files, links, others)


def _live_on_disk(base: Path) -> _Live:
    try:
        gen: str | None = os.readlink(base / DATA_LINK)
    except OSError:
        gen = None
    if gen not in GENERATIONS or not (base / str(gen)).is_dir():
        gen = None
    files: Files = {}
    if gen is not None:
        root = base / gen
        for dirpath, _, names in os.walk(root):
            for n in names:
                path = Path(dirpath) / n
                st = path.lstat()
                if stat.S_ISREG(st.st_mode):
                    files[str(path.relative_to(root))] = (path.read_bytes(), stat.S_IMODE(st.st_mode))
    top = os.listdir(base)
    links = frozenset(n for n in top if not n.startswith("..") and (base / n).is_symlink()
                      and os.readlink(base / n) == _link_target(n))
    others = frozenset(n for n in top if n not in links and n != DATA_LINK and n != gen)
    return _Live(gen, files, links, others)


def _remove(path: Path) -> None:
    """Remove `path`, whatever it is (a link is removed, not followed); nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _make_dir(path: Path) -> None:
    path.mkdir()
    os.chmod(path, DIR_MODE)  # exact, whatever the umask: containers may read as any user


def _replace_with_link(path: Path, target: str) -> None:
    """Make `path` a symlink to `target` in one rename (a directory from an older layout is removed first)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _write_dir(base: Path, files: Files) -> None:
    """Make `base` hold exactly `files`, switching from the old set to the new one in one rename.

    The new generation is written beside the live one; if that fails, it is
    removed and readers keep the old set untouched.
    """
    base.mkdir(parents=True, exist_ok=True)
    live = _live_on_disk(base)
    tops = _tops(files)
    if live.serves(files) and live.links == tops and not live.others:
        return
    gen = live.next_generation()
    root = base / gen
    _remove(root)
    try:
        _make_dir(root)
        for name in sorted(files):
            parent = root
            for part in name.split("/")[:-1]:
                parent = parent / part
                if not parent.is_dir():
                    _make_dir(parent)
            data, mode = files[name]
            write_atomic(root / name, data, mode, durable=False)  # rebuilt from the API after a power cut
    except BaseException:
        _remove(root)
        raise
    _replace_with_link(base / DATA_LINK, gen)
    for top in sorted(tops - live.links):
        _replace_with_link(base / top, _link_target(top))
    for name in os.listdir(base):
        if name not in tops and name not in (DATA_LINK, gen):
            _remove(base / name)
