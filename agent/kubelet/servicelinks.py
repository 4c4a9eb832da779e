"""Service environment variables, as the kubelet gives every container (Docker-link style).

Which services a pod sees: every service of its own namespace while
`spec.enableServiceLinks` is true (the master defaults it so; a pod without the
field counts as true), and always the `kubernetes` service of `default`, which
in-cluster clients find through KUBERNETES_SERVICE_HOST/PORT. A service named
`kubernetes` in the pod's own namespace takes the master's place. Only services
with a cluster IP count: headless ones (`None`) and ExternalName ones (no IP)
give nothing.

What one service gives, NAME being its name upper-cased with `-` as `_`:

    NAME_SERVICE_HOST=IP                  NAME_SERVICE_PORT=<first port>
    NAME_SERVICE_PORT_<PORTNAME>=<port>   (each named port)
    NAME_PORT=<proto>://IP:<first port>
    NAME_PORT_<port>_<PROTO>=<proto>://IP:<port>, and its _PROTO, _PORT, _ADDR (each port)

The agent learns services as the kubelet does: one list-then-watch of every
service (`agent/informer.py`; the node authoriser lets a node read services).
No container is created before that first list has come back: it would miss
KUBERNETES_SERVICE_HOST for good, so it waits a moment and is otherwise a
`CreateContainerConfigError` retried a few seconds later, with the kubelet's
message. Variables are fixed when a container is created, as on a kubelet: a
later service change reaches only containers started after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from agent.client import SERVICES, ApiClient
from agent.informer import Informer
from agent.kubelet.envs import ConfigError

Obj = dict[str, Any]
MASTER_NAMESPACE = "default"
MASTER_SERVICES = frozenset({"kubernetes"})
SYNC_WAIT_SECONDS = 5.0
NOT_SYNCED = "services have not yet been read at least once, cannot construct envvars"


def env_name(name: str) -> str:
    """A service or port name as part of a variable name: `my-svc` → `MY_SVC`."""
    return name.replace("-", "_").upper()


def cluster_ip(service: Obj) -> str:
    """The service's cluster IP, or "" for a headless (`None`) or ExternalName service."""
    ip = str((service.get("spec") or {}).get("clusterIP") or "")
    return "" if ip == "None" else ip


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"  # an IPv6 address in brackets, as in a URL


def service_vars(service: Obj) -> dict[str, str]:
    """The variables one service gives (nothing without a cluster IP or without ports)."""
    ip = cluster_ip(service)
    ports = [p for p in (service.get("spec") or {}).get("ports") or []
             if isinstance(p, dict) and isinstance(p.get("port"), int)]
    if not ip or not ports:
        return {}
    prefix = env_name(str((service.get("metadata") or {}).get("name") or ""))
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(int(ports[0]["port"]))}
    for p in ports:
        if p.get("name"):
            out[f"{prefix}_SERVICE_PORT_{env_name(str(p['name']))}"] = str(int(p["port"]))
    for i, p in enumerate(ports):
        port = int(p["port"])
        proto = str(p.get("protocol") or "TCP")
        url = f"{proto.lower()}://{_host_port(ip, port)}"
        if i == 0:
            out[f"{prefix}_PORT"] = url
        link = f"{prefix}_PORT_{port}_{proto.upper()}"
        out[link] = url
        out[f"{link}_PROTO"] = proto.lower()
        out[f"{link}_PORT"] = str(port)
        out[f"{link}_ADDR"] = ip
    return out


def visible_services(namespace: str, enable_links: bool, services: Iterable[Obj]) -> list[Obj]:
    """The services a pod in `namespace` gets variables for, by name (see the module's docstring)."""
    chosen: dict[str, Obj] = {}
    for svc in services:
        if not cluster_ip(svc):
            continue
        meta = svc.get("metadata") or {}
        name, ns = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        if ns == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, svc)  # the pod's own namespace's service of that name wins
        elif ns == namespace and enable_links:
            chosen[name] = svc
    return [chosen[name] for name in sorted(chosen)]


def pod_service_env(pod: Obj, services: Iterable[Obj]) -> dict[str, str]:
    """Every service variable for the containers of `pod`, from all services of the cluster."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    enable = spec.get("enableServiceLinks")
    out: dict[str, str] = {}
    for svc in visible_services(str(meta.get("namespace") or "default"), enable is None or bool(enable), services):
        out.update(service_vars(svc))
    return out


class ServiceLinks:
    """Every service of the cluster, kept by a list-then-watch on a thread of its own; `env(pod)` for a pod."""

    def __init__(self, api: ApiClient, sync_wait: float = SYNC_WAIT_SECONDS,
                 informer: Informer | None = None) -> None:
        """With `informer`, read a services informer somebody else runs (the agent shares one watch)."""
        self.informer = informer or Informer(api, SERVICES)
        self.sync_wait = sync_wait
        self._stop = threading.Event()
        self._started = informer is not None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the watch (a daemon thread), once; later calls return at once."""
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self.informer.run, args=(self._stop,), name="services-watch", daemon=True).start()

    def stop(self) -> None:
        """End the watch (at its next event or watch timeout)."""
        self._stop.set()

    def env(self, pod: Obj) -> dict[str, str]:
        """The pod's service variables; `ConfigError` until services were listed once (waits `sync_wait` for it)."""
        self.start()
        if not self.informer.synced.wait(self.sync_wait):
            raise ConfigError(NOT_SYNCED)
        return pod_service_env(pod, self.informer.items())
