"""Rules of the plain core kinds: namespaces, nodes, config maps, secrets, events, leases."""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import re
from typing import Any

from core import errors
from core.errors import Cause
from master.registry.resource import Context, Strategy

Obj = dict[str, Any]
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# As Kubernetes: these namespaces hold the cluster's own objects and cannot be deleted.
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


class NamespaceStrategy(Strategy):
    has_status = True
    name_rule = "label"

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("finalizers", ["kubernetes"])
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        if isinstance(labels, dict):
            labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")

    def initial_status(self, obj: Obj) -> Obj:
        return {"phase": "Active"}

    def holds_deletion(self, obj: Obj) -> bool:
        # A terminating namespace stays until the namespace controller removes spec.finalizers.
        return bool((obj.get("spec") or {}).get("finalizers"))

    def check_delete(self, obj: Obj) -> None:
        name = obj.get("metadata", {}).get("name")
        if name in IMMORTAL_NAMESPACES:
            raise errors.Forbidden(message=f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                   kind="namespaces", name=str(name))


class NodeStrategy(Strategy):
    has_status = True

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        _check_cidr_unique(obj, ctx)

    def prepare_update(self, new: Obj, old: Obj, ctx: Context) -> None:
        super().prepare_update(new, old, ctx)
        if _cidrs(new) - _cidrs(old):
            _check_cidr_unique(new, ctx)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return False

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        old_cidr = (old.get("spec") or {}).get("podCIDR")
        new_cidr = (new.get("spec") or {}).get("podCIDR")
        if old_cidr and new_cidr != old_cidr:
            return [Cause("spec.podCIDR", 'Forbidden: node updates may not change podCIDR except from "" '
                          "to valid", "FieldValueForbidden")]
        return []

    def is_volatile_update(self, new: Obj, old: Obj) -> bool:
        """True when only heartbeat timestamps moved: kept in memory, not written to the SD card."""
        return _without_heartbeats(new) == _without_heartbeats(old)


def _cidrs(node: Obj) -> set[str]:
    spec = node.get("spec") if isinstance(node.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    found = {str(spec["podCIDR"])} if spec.get("podCIDR") else set()
    if isinstance(spec.get("podCIDRs"), list):
        found |= {str(c) for c in spec["podCIDRs"] if c}
    return found


def _check_cidr_unique(node: Obj, ctx: Context) -> None:
    """422 if the node's pod range overlaps one another node holds: two boards would route one range."""
    mine = _cidrs(node)
    if not mine:
        return
    name = str((node.get("metadata") or {}).get("name") or "")
    nets = []
    for text in sorted(mine):
        try:
            nets.append((text, ipaddress.ip_network(text, strict=False)))
        except ValueError:
            continue  # malformed: validation's business, not a clash
    others, _ = ctx.store.list("/core/nodes/")
    for other in others:
        other_name = str(other.get("metadata", {}).get("name") or "")
        if other_name == name:
            continue
        for held in sorted(_cidrs(other)):
            try:
                held_net = ipaddress.ip_network(held, strict=False)
            except ValueError:
                continue
            for text, net in nets:
                if net.version == held_net.version and net.overlaps(held_net):
                    path = "spec.podCIDR" if text == (node.get("spec") or {}).get("podCIDR") else "spec.podCIDRs"
                    raise errors.Invalid(
                        message=f'Node "{name}" is invalid: {path}: Invalid value: "{text}": '
                                f'already held by node "{other_name}" ({held})',
                        kind="Node", name=name,
                        causes=[Cause(path, f'Invalid value: "{text}": already held by node "{other_name}" '
                                            f"({held})", "FieldValueInvalid")])


def _without_heartbeats(obj: Obj) -> Obj:
    o = copy.deepcopy(obj)
    o.get("metadata", {}).pop("resourceVersion", None)
    o.get("metadata", {}).pop("managedFields", None)
    for cond in (o.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict):
            cond.pop("lastHeartbeatTime", None)
    return o


def _data_key_causes(data: Any, path: str) -> list[Cause]:
    if data is None:
        return []
    if not isinstance(data, dict):
        return [Cause(path, "Invalid value: must be a map")]
    causes = []
    for key in data:
        if str(key) in (".", "..") or str(key).startswith(".."):
            rule = f"must not be '{key}'" if str(key) in (".", "..") else "must not start with '..'"
            causes.append(Cause(f"{path}[{key}]", f'Invalid value: "{key}": {rule}'))
            continue
        if not _CONFIG_KEY.match(str(key)) or len(str(key)) > 253:
            causes.append(Cause(f"{path}[{key}]", f'Invalid value: "{key}": a valid config key must '
                                "consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                                "or 'KEY_NAME',  or 'key-name', regex used for validation is "
                                "'[-._a-zA-Z0-9]+')"))
    return causes


class ConfigMapStrategy(Strategy):
    def validate(self, obj: Obj) -> list[Cause]:
        causes = _data_key_causes(obj.get("data"), "data") + _data_key_causes(obj.get("binaryData"),
                                                                              "binaryData")
        for key, value in (obj.get("data") or {}).items() if isinstance(obj.get("data"), dict) else []:
            if not isinstance(value, str):
                causes.append(Cause(f"data[{key}]", "Invalid value: must be a string"))
        return causes


class SecretStrategy(Strategy):
    def default(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            if isinstance(data, dict):
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()

    def validate(self, obj: Obj) -> list[Cause]:
        causes = _data_key_causes(obj.get("data"), "data")
        data = obj.get("data")
        for key, value in data.items() if isinstance(data, dict) else []:
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                causes.append(Cause(f"data[{key}]", "Invalid value: illegal base64 data"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("type") != old.get("type"):
            return [Cause("type", f'Invalid value: "{new.get("type")}": field is immutable')]
        return []


class EventStrategy(Strategy):
    name_rule = ""

    def validate(self, obj: Obj) -> list[Cause]:
        if not isinstance(obj.get("involvedObject"), dict):
            return [Cause("involvedObject", "Required value", "FieldValueRequired")]
        return []


class EndpointsStrategy(Strategy):
    pass


class LeaseStrategy(Strategy):
    pass


class ServiceAccountStrategy(Strategy):
    pass


