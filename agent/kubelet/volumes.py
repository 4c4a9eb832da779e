"""Pod volumes: emptyDir, hostPath, configMap and secret (on tmpfs), and how containers mount them.

Disk-backed volumes are directories under `DATA/pods/<uid>/volumes/`, bind-mounted
into the containers. Memory-backed ones (secrets, emptyDir with medium Memory) are
Docker `local` volumes of type tmpfs, so they live in the Docker engine's mount
namespace whatever namespace the agent runs in (a simulated board's `ip netns
exec` gives the agent a private one); the pause container mounts them for the
pod's lifetime and the agent fills them through it (`put_archive`), so their
contents never touch the SD card.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.kubelet.envs import ConfigError, Lookup
from agent.runtime import labels as L
from agent.runtime.docker import DockerRuntime

Obj = dict[str, Any]
SANDBOX_MOUNTS = "/.pikube/volumes"
Files = dict[str, tuple[bytes, int]]


@dataclass
class PodVolumes:
    """Where each of a pod's volumes comes from, and what the memory-backed ones must hold."""

    sources: dict[str, str] = field(default_factory=dict)  # volume name -> host path or docker volume name
    memory: dict[str, Files] = field(default_factory=dict)  # docker volume name -> files
    read_only: set[str] = field(default_factory=set)  # configMap and secret volumes, as on Kubernetes

    def sandbox_binds(self) -> list[str]:
        return [f"{vol}:{SANDBOX_MOUNTS}/{vol}" for vol in sorted(self.memory)]


def _items(data: dict[str, bytes], src: Obj) -> Files:
    default = int(src.get("defaultMode") or 0o644)
    items = src.get("items")
    if not items:
        return {k: (v, default) for k, v in data.items()}
    out: Files = {}
    for item in items:
        key = str(item.get("key", ""))
        if key not in data:
            if src.get("optional"):
                continue
            raise ConfigError(f"configmap references non-existent config key: {key}")
        out[str(item.get("path") or key)] = (data[key], int(item.get("mode") or default))
    return out


class VolumeManager:
    def __init__(self, data_dir: Path, runtime: DockerRuntime, lookup: Lookup) -> None:
        self.root = data_dir / "pods"
        self.runtime, self.lookup = runtime, lookup
        self._written: dict[str, str] = {}  # docker volume -> digest of what was put there

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    def volume_name(self, uid: str, name: str) -> str:
        return f"pikube-{uid}-{name}"

    def prepare(self, pod: Obj) -> PodVolumes:
        """Make every volume of `pod` ready (ConfigError when a source is missing)."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid, ns = str(meta["uid"]), str(meta.get("namespace", "default"))
        out = PodVolumes()
        for vol in spec.get("volumes") or []:
            name = str(vol.get("name", ""))
            base = self.pod_dir(uid) / "volumes" / name
            if "emptyDir" in vol:
                if (vol.get("emptyDir") or {}).get("medium") == "Memory":
                    docker_vol = self._tmpfs_volume(uid, name, (vol.get("emptyDir") or {}).get("sizeLimit"))
                    out.sources[name] = docker_vol
                    out.memory[docker_vol] = {}
                else:
                    base.mkdir(parents=True, exist_ok=True)
                    os.chmod(base, 0o777)
                    out.sources[name] = str(base)
            elif "hostPath" in vol:
                out.sources[name] = self._host_path(vol["hostPath"])
            elif "configMap" in vol:
                src = vol["configMap"]
                data = self.lookup.config_map(ns, str(src.get("name", "")))
                if data is None and not src.get("optional"):
                    raise ConfigError(f'configmap "{src.get("name")}" not found')
                files = _items({k: v.encode() for k, v in (data or {}).items()}, src)
                _write_dir(base, files)
                out.sources[name] = str(base)
                out.read_only.add(name)
            elif "secret" in vol:
                src = vol["secret"]
                data = self.lookup.secret(ns, str(src.get("secretName", "")))
                if data is None and not src.get("optional"):
                    raise ConfigError(f'secret "{src.get("secretName")}" not found')
                docker_vol = self._tmpfs_volume(uid, name, None)
                out.sources[name] = docker_vol
                out.memory[docker_vol] = _items({k: v.encode() for k, v in (data or {}).items()}, src)
                out.read_only.add(name)
            else:
                kinds = [k for k in vol if k != "name"]
                raise ConfigError(f'volume "{name}": type {", ".join(kinds) or "unknown"} is not supported by pikube')
        return out

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
        """Put the memory-backed volumes' files in place through the (running) pause container."""
        for vol, files in volumes.memory.items():
            digest = hashlib.sha256(json.dumps({k: [v.hex(), m] for k, (v, m) in sorted(files.items())})
                                    .encode() + sandbox_id.encode()).hexdigest()
            if not force and self._written.get(vol) == digest:
                continue
            if files:
                self.runtime.api.put_archive(sandbox_id, f"{SANDBOX_MOUNTS}/{vol}", _tar(files))
            self._written[vol] = digest

    def cleanup(self, uid: str) -> None:
        """Remove everything of pod `uid` (its containers must be gone)."""
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)
        self._remove_docker_volumes(uid)

    def _remove_docker_volumes(self, uid: str) -> None:
        found = self.runtime.api.volumes(filters={"label": [f"{L.NODE}={self.runtime.node}", f"{L.POD_UID}={uid}"]})
        for vol in (found or {}).get("Volumes") or []:
            with contextlib.suppress(Exception):
                self.runtime.api.remove_volume(vol["Name"], force=True)
            self._written.pop(vol["Name"], None)

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
    from pikube.kube.quantity import bytes_value

    return int(bytes_value(str(value)))


def _tar(files: Files) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        now = time.time()
        for name in sorted(files):
            data, mode = files[name]
            parts = name.split("/")
            for i in range(1, len(parts)):
                info = tarfile.TarInfo("/".join(parts[:i]))
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_dir(base: Path, files: Files) -> None:
    """Make `base` hold exactly `files`, each replaced atomically (readers never see half a file)."""
    base.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for name, (data, mode) in files.items():
        target = base / name
        wanted.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if target.read_bytes() == data and (target.stat().st_mode & 0o7777) == mode:
                continue
        except OSError:
            pass
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    for path in sorted(base.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
