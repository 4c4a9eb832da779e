"""A container's environment as Kubernetes builds it: envFrom, env, valueFrom, service variables, $(VAR) expansion.

Sources are read through `Lookup`, so tests need no API server. A missing
config map, secret or key that is not `optional` is a `ConfigError`, which the
pod's status shows as `CreateContainerConfigError`, as on the kubelet.

Service variables (`servicelinks.py` computes them) come in as `service_env`:
they are visible to `$(VAR)` in env values (after the container's own
variables), and each is added unless the container defines the same name.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.kube.quantity import parse_quantity

Obj = dict[str, Any]
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class ConfigError(Exception):
    """The container cannot be configured yet (a referenced object or key is missing)."""


@dataclass(frozen=True)
class Lookup:
    """Where env and volume data come from: `(namespace, name) -> data or None if not found`."""

    config_map: Callable[[str, str], dict[str, str] | None]
    secret: Callable[[str, str], dict[str, str] | None]
    # (namespace, claim) -> the bound PersistentVolume; ConfigError when it cannot be used (yet)
    claim_volume: Callable[[str, str], dict[str, Any]] = field(default=lambda ns, name: _no_claims(name))
    # (pod, audience, seconds) -> a service account token bound to the pod; ConfigError when none can be had
    sa_token: Callable[[dict[str, Any], str, int], str] = field(default=lambda pod, aud, secs: _no_tokens())


def _no_tokens() -> str:
    raise ConfigError("service account tokens cannot be had here")


def _no_claims(name: str) -> dict[str, Any]:
    raise ConfigError(f'persistentvolumeclaim "{name}" cannot be looked up here')


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` is a literal `$`, the rest stays."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def field_value(pod: Obj, path: str, host_ip: str = "", pod_ip: str = "") -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": host_ip,
        "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip,
    }
    if path == "metadata.labels" or path == "metadata.annotations":
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise ConfigError(f'unsupported fieldRef fieldPath "{path}"')
    return str(simple[path] or "")


def _resource(pod: Obj, container: Obj, ref: Obj, node_cpus: int, node_memory: int) -> str:
    name = ref.get("containerName") or container.get("name")
    target = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), container)
    kind, what = str(ref.get("resource", "")).split(".", 1) if "." in str(ref.get("resource", "")) else ("", "")
    res = (target.get("resources") or {}).get(kind) or {}
    divisor = float(parse_quantity(str(ref.get("divisor") or "1")))
    if what in res:
        value = float(parse_quantity(str(res[what])))
    elif kind == "limits":
        value = float(node_cpus if what == "cpu" else node_memory)
    else:
        value = 0.0
    out = value / divisor if divisor else value
    return str(int(-(-out // 1)))  # the kubelet rounds up


def build(pod: Obj, container: Obj, lookup: Lookup, host_ip: str, pod_ip: str,
          node_cpus: int = 1, node_memory: int = 0, service_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `container` in `pod`, in Kubernetes' order (envFrom, then env, then services)."""
    ns = str((pod.get("metadata") or {}).get("namespace", "default"))
    services: Mapping[str, str] = service_env or {}
    env: dict[str, str] = {}
    visible = ChainMap(env, dict(services))  # what $(VAR) sees: the container's variables so far, then services
    for src in container.get("envFrom") or []:
        prefix = str(src.get("prefix") or "")
        if "configMapRef" in src:
            ref, data = src["configMapRef"], lookup.config_map(ns, src["configMapRef"].get("name", ""))
            what = "configmap"
        else:
            ref, data = src.get("secretRef") or {}, lookup.secret(ns, (src.get("secretRef") or {}).get("name", ""))
            what = "secret"
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{what} "{ref.get("name")}" not found')
        for key, value in data.items():
            if _ENV_NAME.fullmatch(prefix + key):
                env[prefix + key] = value
    for item in container.get("env") or []:
        name = str(item.get("name", ""))
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), visible)
            continue
        vf = item["valueFrom"] or {}
        if "fieldRef" in vf:
            env[name] = field_value(pod, str(vf["fieldRef"].get("fieldPath", "")), host_ip, pod_ip)
        elif "resourceFieldRef" in vf:
            env[name] = _resource(pod, container, vf["resourceFieldRef"], node_cpus, node_memory)
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            is_cm = "configMapKeyRef" in vf
            ref = vf["configMapKeyRef"] if is_cm else vf["secretKeyRef"]
            data = (lookup.config_map if is_cm else lookup.secret)(ns, str(ref.get("name", "")))
            what = "configmap" if is_cm else "secret"
            if data is None or ref.get("key") not in data:
                if ref.get("optional"):
                    continue
                if data is None:
                    raise ConfigError(f'{what} "{ref.get("name")}" not found')
                kind = "ConfigMap" if is_cm else "Secret"
                raise ConfigError(f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}")
            env[name] = data[str(ref["key"])]
    for key, value in services.items():
        env.setdefault(key, value)  # the container's own variable of the same name wins
    return env
