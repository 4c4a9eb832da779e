"""Validation of a pod's volumes, as the API server does it before the agent ever sees them.

The agent writes configMap and secret volumes as root on the board, so a key or
an `items[].path` that climbs out of the volume (`..`, an absolute path) must be
refused here, with the Status causes Kubernetes gives, not only by the agent.
"""

from __future__ import annotations

from typing import Any

from core.errors import Cause
from core.kube import validation

Obj = dict[str, Any]

# The volume types pikube's agent provides; they are checked here in depth.
SOURCES = ("emptyDir", "configMap", "secret", "hostPath")
# The other volume types Kubernetes knows. As on Kubernetes, the API accepts them and the node reports
# what it cannot mount (the pod's status says so); here they only count for "more than 1 volume type".
_OTHER_SOURCES = ("persistentVolumeClaim", "projected", "downwardAPI", "nfs", "iscsi", "csi", "ephemeral",
                  "image", "gitRepo", "glusterfs", "rbd", "cephfs", "fc", "flexVolume", "cinder", "flocker",
                  "azureFile", "azureDisk", "vsphereVolume", "quobyte", "photonPersistentDisk",
                  "portworxVolume", "scaleIO", "storageos", "gcePersistentDisk", "awsElasticBlockStore")
_MAX_MODE = 0o777


def local_path(value: Any, field: str) -> list[Cause]:
    """A relative path inside the volume: not absolute, no `..` element, not starting with `..`."""
    if not isinstance(value, str) or not value:
        return [validation.required(field)]
    causes = []
    if value.startswith("/"):
        causes.append(validation.invalid(field, value, "must be a relative path"))
    if any(part == ".." for part in value.split("/")):
        causes.append(validation.invalid(field, value, "must not contain '..'"))
    elif value.startswith(".."):
        causes.append(validation.invalid(field, value, "must not start with '..'"))
    return causes


def _mode(value: Any, field: str) -> list[Cause]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_MODE:
        return [validation.invalid(field, value, "must be a number between 0 and 0777 (octal), both inclusive")]
    return []


def _projection(src: Obj, field: str, name_field: str) -> list[Cause]:
    causes = []
    if not src.get(name_field):
        causes.append(validation.required(f"{field}.{name_field}"))
    causes += _mode(src.get("defaultMode"), f"{field}.defaultMode")
    items = src.get("items") or []
    if not isinstance(items, list):
        return [*causes, validation.invalid(f"{field}.items", items, "must be a list")]
    for i, item in enumerate(items):
        at = f"{field}.items[{i}]"
        if not isinstance(item, dict):
            causes.append(validation.invalid(at, item, "must be an object"))
            continue
        if not item.get("key"):
            causes.append(validation.required(f"{at}.key"))
        causes += local_path(item.get("path"), f"{at}.path")
        causes += _mode(item.get("mode"), f"{at}.mode")
    return causes


def default_volume(volume: Obj) -> None:
    """A volume that names no source is an emptyDir; configMap and secret files default to mode 0644."""
    if not any(volume.get(k) is not None for k in (*SOURCES, *_OTHER_SOURCES)):
        volume["emptyDir"] = {}
    for src in ("configMap", "secret"):
        if isinstance(volume.get(src), dict):
            volume[src].setdefault("defaultMode", 0o644)


def volume_causes(volume: Any, field: str) -> list[Cause]:
    """What is wrong with one entry of `spec.volumes` (its name is checked by the caller)."""
    if not isinstance(volume, dict):
        return [validation.invalid(field, volume, "must be an object")]
    present = [k for k in (*SOURCES, *_OTHER_SOURCES) if volume.get(k) is not None]
    if len(present) > 1:
        return [validation.forbidden(f"{field}.{present[1]}", "may not specify more than 1 volume type")]
    if not present:
        return [validation.required(field, "must specify a volume type")]
    kind = present[0]
    src = volume[kind]
    at = f"{field}.{kind}"
    if kind in _OTHER_SOURCES:
        return []
    if not isinstance(src, dict):
        return [validation.invalid(at, src, "must be an object")]
    if kind == "configMap":
        return _projection(src, at, "name")
    if kind == "secret":
        return _projection(src, at, "secretName")
    if kind == "hostPath":
        path = src.get("path")
        if not isinstance(path, str) or not path:
            return [validation.required(f"{at}.path")]
        if any(part == ".." for part in path.split("/")):
            return [validation.invalid(f"{at}.path", path, "must not contain '..'")]
    return []
