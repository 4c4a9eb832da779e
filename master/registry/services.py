"""Service rules: ClusterIP and NodePort allocation without collisions, and their immutability.

Allocation scans the services in the store under the context's allocation lock,
which the handler holds from allocation until the write lands, so two creates
can never pick the same address or port.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from core import errors
from core.errors import Cause
from core.kube import validation
from master.registry.resource import Context, Strategy

Obj = dict[str, Any]
_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _used(ctx: Context, skip_key: str = "") -> tuple[set[str], set[int]]:
    items, _ = ctx.store.list("/core/services/")
    ips: set[str] = set()
    ports: set[int] = set()
    for svc in items:
        meta = svc.get("metadata", {})
        if f"{meta.get('namespace')}/{meta.get('name')}" == skip_key:
            continue
        spec = svc.get("spec", {})
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None":
                ips.add(str(ip))
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and p.get("nodePort"):
                ports.add(int(p["nodePort"]))
    return ips, ports


def first_service_ip(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr)[1])


class ServiceStrategy(Strategy):
    has_status = True
    serialize_writes = True

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        if spec["type"] == "ExternalName":
            return
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if spec.get("sessionAffinity") == "ClientIP":
            cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
            cfg.setdefault("timeoutSeconds", 10800)
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "targetPort" not in p and "port" in p:
                    p["targetPort"] = p["port"]

    def validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [Cause("spec", "Required value", "FieldValueRequired")]
        causes: list[Cause] = []
        stype = spec.get("type")
        if stype not in _TYPES:
            causes.append(Cause("spec.type", f'Unsupported value: "{stype}": supported values: '
                                + ", ".join(f'"{t}"' for t in _TYPES), "FieldValueNotSupported"))
            return causes
        if stype == "ExternalName":
            if not spec.get("externalName"):
                causes.append(Cause("spec.externalName", "Required value", "FieldValueRequired"))
            return causes
        ports = spec.get("ports") or []
        if not ports and spec.get("clusterIP") != "None":
            causes.append(Cause("spec.ports", "Required value", "FieldValueRequired"))
        names: set[str] = set()
        for i, p in enumerate(ports):
            path = f"spec.ports[{i}]"
            if not isinstance(p, dict):
                causes.append(Cause(path, "Invalid value: must be an object"))
                continue
            port = p.get("port")
            if not isinstance(port, int) or not 1 <= port <= 65535:
                causes.append(Cause(f"{path}.port",
                                    f"Invalid value: {port}: must be between 1 and 65535, inclusive"))
            name = p.get("name")
            if len(ports) > 1 and not name:
                causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
            if name:
                causes += validation.dns1123_label(str(name), f"{path}.name")
                if name in names:
                    causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate"))
                names.add(str(name))
            if p.get("protocol") not in ("TCP", "UDP", "SCTP"):
                causes.append(Cause(f"{path}.protocol", f'Unsupported value: "{p.get("protocol")}": '
                                    'supported values: "SCTP", "TCP", "UDP"', "FieldValueNotSupported"))
            if "nodePort" in p and p["nodePort"] and stype == "ClusterIP":
                causes.append(Cause(f"{path}.nodePort",
                                    "Forbidden: may not be used when `type` is 'ClusterIP'",
                                    "FieldValueForbidden"))
        causes += _external_ip_causes(spec.get("externalIPs"))
        selector = spec.get("selector")
        if selector is not None:
            if not isinstance(selector, dict):
                causes.append(Cause("spec.selector", "Invalid value: must be a map of strings"))
            else:
                causes += validation.labels(selector, "spec.selector")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        ns, os_ = new.get("spec") or {}, old.get("spec") or {}
        if os_.get("clusterIP") and ns.get("clusterIP") != os_.get("clusterIP") \
                and os_.get("type") != "ExternalName" and ns.get("type") != "ExternalName":
            return [Cause("spec.clusterIP", f'Invalid value: "{ns.get("clusterIP")}": field is immutable')]
        return []

    def prepare_create(self, obj: Obj, ctx: Context) -> None:
        super().prepare_create(obj, ctx)
        obj["status"] = {"loadBalancer": {}}
        self._allocate(obj, None, ctx)

    def prepare_update(self, new: Obj, old: Obj, ctx: Context) -> None:
        super().prepare_update(new, old, ctx)
        ns, os_ = new.setdefault("spec", {}), old.get("spec") or {}
        if not isinstance(ns, dict):
            return
        # Like Kubernetes: an update that leaves allocated values unset keeps them.
        if not ns.get("clusterIP") and os_.get("clusterIP") and ns.get("type") != "ExternalName":
            ns["clusterIP"] = os_["clusterIP"]
            ns["clusterIPs"] = os_.get("clusterIPs") or [os_["clusterIP"]]
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in os_.get("ports") or [] if isinstance(p, dict)}
        if ns.get("type") in ("NodePort", "LoadBalancer"):
            for p in ns.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    prev = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
                    if prev:
                        p["nodePort"] = prev
        elif ns.get("type") == "ClusterIP":
            for p in ns.get("ports") or []:
                if isinstance(p, dict):
                    p.pop("nodePort", None)
        self._allocate(new, old, ctx)

    def _allocate(self, obj: Obj, old: Obj | None, ctx: Context) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
            return
        meta = obj.get("metadata", {})
        used_ips, used_ports = _used(ctx, skip_key=f"{meta.get('namespace')}/{meta.get('name')}")
        net = ipaddress.ip_network(ctx.settings.service_cidr)
        external = spec.get("externalIPs")
        for i, text in enumerate(external if isinstance(external, list) else []):
            try:
                addr = ipaddress.ip_address(str(text))
            except ValueError:
                continue  # validation says so
            for what, cidr in (("the service range", net), ("the pod network", ctx.settings.pod_cidr)):
                if addr in ipaddress.ip_network(cidr):
                    raise _invalid(obj, f"spec.externalIPs[{i}]", f'Invalid value: "{text}": may not be in '
                                   f"{what} ({cidr}): traffic to it never leaves the cluster's own rules")
        want = spec.get("clusterIP")
        if want and want != "None":
            try:
                addr = ipaddress.ip_address(want)
            except ValueError:
                raise _invalid(obj, "spec.clusterIP",
                               f'Invalid value: "{want}": must be a valid IP address') from None
            if addr not in net:
                raise _invalid(obj, "spec.clusterIP", f'Invalid value: "{want}": provided IP is not in the '
                               f"valid range. The range of valid IPs is {net}")
            if want in used_ips:
                raise _invalid(obj, "spec.clusterIP",
                               f'Invalid value: "{want}": provided IP is already allocated')
        elif not want:
            want = _pick_ip(net, used_ips)
            spec["clusterIP"] = want
        spec["clusterIPs"] = [want]
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return
        # A LoadBalancer may do without NodePorts (`allocateLoadBalancerNodePorts: false`): only those asked for.
        allocate = spec.get("type") == "NodePort" or spec.get("allocateLoadBalancerNodePorts") is not False
        low, high = ctx.settings.node_port_range
        mine: set[int] = set()
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p, dict):
                continue
            np_ = p.get("nodePort")
            if np_:
                if not isinstance(np_, int) or not low <= np_ <= high:
                    raise _invalid(obj, f"spec.ports[{i}].nodePort", f"Invalid value: {np_}: provided port "
                                   f"is not in the valid range. The range of valid ports is {low}-{high}")
                if np_ in used_ports or np_ in mine:
                    raise _invalid(obj, f"spec.ports[{i}].nodePort",
                                   f"Invalid value: {np_}: provided port is already allocated")
            elif not allocate:
                continue
            else:
                free = [n for n in range(low, high + 1) if n not in used_ports and n not in mine]
                if not free:
                    raise errors.ServiceUnavailable(message="no free node ports left in "
                                                    f"{low}-{high}")
                np_ = random.choice(free)
                p["nodePort"] = np_
            mine.add(int(np_))


def _external_ip_causes(ips: object) -> list[Cause]:
    """Kubernetes' checks of `spec.externalIPs` (ValidateNonSpecialIP), and pikube's: IPv4 only."""
    if ips is None:
        return []
    if not isinstance(ips, list):
        return [Cause("spec.externalIPs", "Invalid value: must be a list of IP addresses")]
    causes: list[Cause] = []
    for i, text in enumerate(ips):
        path = f"spec.externalIPs[{i}]"
        try:
            addr = ipaddress.ip_address(str(text))
        except ValueError:
            causes.append(Cause(path, f'Invalid value: "{text}": must be a valid IP address, '
                                "(e.g. 10.9.8.7 or 2001:db8::ffff)"))
            continue
        special = [("unspecified", addr.is_unspecified, "may not be unspecified (0.0.0.0, ::)"),
                   ("loopback", addr.is_loopback, "may not be in the loopback range (127.0.0.0/8, ::1/128)"),
                   ("link-local", addr.is_link_local,
                    "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
                   ("multicast", addr.is_multicast, "may not be a multicast address (224.0.0.0/4, ff00::/8)")]
        problem = next((text_ for _, hit, text_ in special if hit), "")
        if not problem and addr.version != 4:
            problem = "must be an IPv4 address: pikube's service proxy is IPv4 only"
        if problem:
            causes.append(Cause(path, f'Invalid value: "{text}": {problem}'))
    return causes


def _pick_ip(net: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[str]) -> str:
    size = net.num_addresses
    for _ in range(64):
        candidate = str(net[random.randrange(2, size - 1)])
        if candidate not in used:
            return candidate
    for addr in net.hosts():
        if str(addr) not in used and addr != net[1]:
            return str(addr)
    raise errors.ServiceUnavailable(message=f"no free cluster IPs left in {net}")


def _invalid(obj: Obj, field: str, message: str) -> errors.Invalid:
    from master.registry.meta import invalid_message

    name = str(obj.get("metadata", {}).get("name", ""))
    cause = Cause(field, message)
    return errors.Invalid(message=invalid_message("Service", name, [cause]), kind="Service", name=name,
                          causes=[cause])
