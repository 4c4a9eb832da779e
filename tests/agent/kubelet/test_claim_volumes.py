"""A pod's claims on the board: where each kind of bound volume is mounted from, local-path directories made on
first use and removed only when they are one, and the master's removal request on the agent's port."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from agent.kubelet.envs import ConfigError, Lookup
from agent.kubelet.volumes import VolumeError, VolumeManager
from core import wellknown

Obj = dict[str, Any]
UID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


class NoDocker:
    node = "board"
    api = None


def manager(tmp_path: Path, volumes: dict[str, Obj]) -> VolumeManager:
    def claim_volume(ns: str, name: str) -> Obj:
        if name not in volumes:
            raise ConfigError(f'persistentvolumeclaim "{name}" is not bound')
        return volumes[name]

    lookup = Lookup(config_map=lambda ns, n: None, secret=lambda ns, n: None, claim_volume=claim_volume)
    return VolumeManager(tmp_path / "data", NoDocker(), lookup, tmp_path / "usb")  # type: ignore[arg-type]


def local_path(path: str) -> Obj:
    return {"metadata": {"name": f"pvc-{UID}", "annotations": {
        wellknown.PROVISIONED_BY_ANNOTATION: wellknown.LOCAL_PATH_PROVISIONER}},
        "spec": {"hostPath": {"path": path, "type": "DirectoryOrCreate"}, "capacity": {"storage": "1Gi"}}}


def pod(*claims: str, read_only: bool = False) -> Obj:
    return {"metadata": {"uid": "p1", "namespace": "default", "name": "p"}, "spec": {"volumes": [
        {"name": c, "persistentVolumeClaim": {"claimName": c, "readOnly": read_only}} for c in claims]}}


def test_a_local_path_volume_is_made_on_first_use_writable_by_any_user(tmp_path: Path) -> None:
    where = tmp_path / "usb" / f"pvc-{UID}_default_data"
    vm = manager(tmp_path, {"data": local_path(str(where))})
    got = vm.prepare(pod("data"))
    assert got.sources == {"data": str(where)}
    assert stat.S_IMODE(where.stat().st_mode) == 0o777
    (where / "kept").write_text("x")
    assert vm.prepare(pod("data", read_only=True)).read_only == {"data"}
    assert (where / "kept").read_text() == "x"  # a second pod (or a restart) finds the data


def test_a_local_path_volume_outside_the_boards_directory_is_refused(tmp_path: Path) -> None:
    vm = manager(tmp_path, {"data": local_path(str(tmp_path / "elsewhere" / f"pvc-{UID}_default_data")),
                            "odd": local_path(str(tmp_path / "usb" / "etc"))})
    for name in ("data", "odd"):
        with pytest.raises(VolumeError) as refused:
            vm.prepare(pod(name))
        assert "not in this board's local-path directory" in refused.value.event_message
    assert not (tmp_path / "elsewhere").exists()


def test_other_volume_kinds_and_an_unbound_claim(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    vm = manager(tmp_path, {
        "host": {"metadata": {"name": "h"}, "spec": {"hostPath": {"path": str(tmp_path / "srv")}}},
        "local": {"metadata": {"name": "l"}, "spec": {"local": {"path": str(tmp_path / "absent")}}},
        "nfs": {"metadata": {"name": "n"}, "spec": {"nfs": {"server": "nas", "path": "/x"}, "capacity": {}}}})
    assert vm.prepare(pod("host")).sources == {"host": str(tmp_path / "srv")}
    with pytest.raises(VolumeError, match=r"path .* does not exist on this board"):
        vm.prepare(pod("local"))
    with pytest.raises(VolumeError, match='persistentvolume "n" is of type nfs, which pikube does not mount'):
        vm.prepare(pod("nfs"))
    with pytest.raises(VolumeError, match='persistentvolumeclaim "gone" is not bound'):
        vm.prepare(pod("gone"))


def test_removal_takes_only_a_local_path_directory(tmp_path: Path) -> None:
    vm = manager(tmp_path, {})
    victim = tmp_path / "usb" / f"pvc-{UID}_default_data"
    (victim / "deep").mkdir(parents=True)
    (victim / "deep" / "file").write_text("data")
    precious = tmp_path / "usb" / "precious"
    precious.mkdir()
    for bad in ("precious", "..", f"../usb/pvc-{UID}_default_data", f"pvc-{UID}_default_data/deep", ""):
        assert vm.remove_local_path(bad) is False
    assert victim.is_dir() and precious.is_dir()
    assert vm.remove_local_path(f"pvc-{UID}_default_data") is True
    assert not victim.exists()
    assert vm.remove_local_path(f"pvc-{UID}_default_data") is True  # already gone: done
