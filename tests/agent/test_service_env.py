"""Service environment variables (no Docker, no master): names, ports, which services, precedence, the watch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.client import ConnectionFailed
from agent.kubelet import containers
from agent.kubelet.envs import ConfigError, Lookup, build
from agent.kubelet.servicelinks import NOT_SYNCED, ServiceLinks, pod_service_env, service_vars, visible_services
from agent.runtime import labels as L

Obj = dict[str, Any]
NO_OBJECTS = Lookup(config_map=lambda ns, n: None, secret=lambda ns, n: None)


def svc(name: str, ns: str, ip: str | None, *ports: Obj, kind: str = "ClusterIP") -> Obj:
    spec: Obj = {"type": kind, "ports": list(ports)}
    if ip is not None:
        spec["clusterIP"] = ip
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def pod(ns: str = "shop", links: bool | None = True) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "i"}]}
    if links is not None:
        spec["enableServiceLinks"] = links
    return {"metadata": {"name": "p", "namespace": ns, "uid": "u1"}, "spec": spec}


MASTER = svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})


def test_one_service_gives_host_ports_and_docker_link_variables() -> None:
    web = svc("web-front", "shop", "10.96.7.8", {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
              {"name": "dns-udp", "port": 53, "protocol": "UDP"})
    assert service_vars(web) == {
        "WEB_FRONT_SERVICE_HOST": "10.96.7.8",
        "WEB_FRONT_SERVICE_PORT": "80",
        "WEB_FRONT_SERVICE_PORT_HTTP": "80",
        "WEB_FRONT_SERVICE_PORT_DNS_UDP": "53",
        "WEB_FRONT_PORT": "tcp://10.96.7.8:80",
        "WEB_FRONT_PORT_80_TCP": "tcp://10.96.7.8:80",
        "WEB_FRONT_PORT_80_TCP_PROTO": "tcp",
        "WEB_FRONT_PORT_80_TCP_PORT": "80",
        "WEB_FRONT_PORT_80_TCP_ADDR": "10.96.7.8",
        "WEB_FRONT_PORT_53_UDP": "udp://10.96.7.8:53",
        "WEB_FRONT_PORT_53_UDP_PROTO": "udp",
        "WEB_FRONT_PORT_53_UDP_PORT": "53",
        "WEB_FRONT_PORT_53_UDP_ADDR": "10.96.7.8",
    }


def test_an_unnamed_port_without_protocol_is_tcp_and_has_no_named_variable() -> None:
    got = service_vars(svc("db", "shop", "10.96.0.9", {"port": 5432}))
    assert got == {"DB_SERVICE_HOST": "10.96.0.9", "DB_SERVICE_PORT": "5432", "DB_PORT": "tcp://10.96.0.9:5432",
                   "DB_PORT_5432_TCP": "tcp://10.96.0.9:5432", "DB_PORT_5432_TCP_PROTO": "tcp",
                   "DB_PORT_5432_TCP_PORT": "5432", "DB_PORT_5432_TCP_ADDR": "10.96.0.9"}


def test_ipv6_cluster_ip_is_bracketed_in_urls_only() -> None:
    got = service_vars(svc("v6", "shop", "fd00::a", {"port": 80}))
    assert got["V6_PORT"] == "tcp://[fd00::a]:80" and got["V6_PORT_80_TCP"] == "tcp://[fd00::a]:80"
    assert got["V6_SERVICE_HOST"] == "fd00::a" and got["V6_PORT_80_TCP_ADDR"] == "fd00::a"


def test_services_without_a_cluster_ip_give_nothing() -> None:
    headless = svc("headless", "shop", "None", {"port": 80})
    external = {"metadata": {"name": "ext", "namespace": "shop"},
                "spec": {"type": "ExternalName", "externalName": "example.com"}}
    unallocated = svc("pending", "shop", None, {"port": 80})
    assert service_vars(headless) == service_vars(external) == service_vars(unallocated) == {}
    env = pod_service_env(pod(), [MASTER, headless, external, unallocated])
    assert not [k for k in env if not k.startswith("KUBERNETES_")]


def test_a_pod_sees_its_namespace_and_the_master_service_only() -> None:
    services = [MASTER, svc("web", "shop", "10.96.1.1", {"port": 80}), svc("web", "other", "10.96.2.2", {"port": 81}),
                svc("metrics", "default", "10.96.3.3", {"port": 9100})]
    env = pod_service_env(pod("shop"), services)
    assert env["WEB_SERVICE_HOST"] == "10.96.1.1"  # its own namespace's, not other's
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443" and env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert "METRICS_SERVICE_HOST" not in env  # default's services other than `kubernetes` stay in default
    in_default = pod_service_env(pod("default"), services)
    assert in_default["METRICS_SERVICE_HOST"] == "10.96.3.3" and "WEB_SERVICE_HOST" not in in_default


def test_without_service_links_only_the_master_service_remains() -> None:
    services = [MASTER, svc("web", "shop", "10.96.1.1", {"port": 80})]
    env = pod_service_env(pod("shop", links=False), services)
    assert env == service_vars(MASTER)
    assert pod_service_env(pod("shop", links=None), services)["WEB_SERVICE_HOST"] == "10.96.1.1"  # default: on
    assert pod_service_env(pod("shop", links=False), [svc("web", "shop", "10.96.1.1", {"port": 80})]) == {}


def test_a_namespace_service_named_kubernetes_replaces_the_masters() -> None:
    own = svc("kubernetes", "shop", "10.96.9.9", {"port": 8443})
    for order in ([MASTER, own], [own, MASTER]):
        assert [s["metadata"]["namespace"] for s in visible_services("shop", True, order)] == ["shop"]
        assert pod_service_env(pod("shop"), order)["KUBERNETES_SERVICE_HOST"] == "10.96.9.9"
    assert pod_service_env(pod("shop", links=False), [own, MASTER])["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


def test_the_containers_own_variables_win_and_service_variables_expand() -> None:
    services = pod_service_env(pod(), [MASTER, svc("web", "shop", "10.96.1.1", {"name": "http", "port": 80})])
    c = {"name": "c",
         "command": ["sh", "-c", "wget $(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"],
         "args": ["$(KUBERNETES_SERVICE_HOST)", "$(WEB_SERVICE_PORT_HTTP)"],
         "envFrom": [{"configMapRef": {"name": "cm"}}],
         "env": [{"name": "URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT_HTTP)/"},
                 {"name": "EARLY", "value": "$(WEB_SERVICE_PORT)"},
                 {"name": "WEB_SERVICE_PORT", "value": "8081"},
                 {"name": "LATE", "value": "$(WEB_SERVICE_PORT)"},
                 {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope", "optional": True}}},
                 {"name": "WEB_PORT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope",
                                                                        "optional": True}}}]}
    lookup = Lookup(config_map=lambda ns, n: {"WEB_SERVICE_HOST": "from-configmap"} if n == "cm" else None,
                    secret=lambda ns, n: None)
    env = build(pod(), c, lookup, "192.168.1.2", "", service_env=services)
    assert env["WEB_SERVICE_HOST"] == "from-configmap"  # envFrom beats the service
    assert env["WEB_SERVICE_PORT"] == "8081"  # env beats the service
    assert env["URL"] == "http://from-configmap:80/"  # $(VAR): the container's first, then services
    assert env["EARLY"] == "80" and env["LATE"] == "8081"  # a variable sees only those declared before it
    assert env["WEB_PORT"] == "tcp://10.96.1.1:80"  # an optional ref that gave nothing leaves the service's
    assert "OPT" not in env
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["WEB_PORT_80_TCP_ADDR"] == "10.96.1.1"
    args = containers.create_args(pod(), c, L.Kind.APP, 0, "n1", "sandbox", env, [])
    assert args.config["entrypoint"] == ["sh", "-c", "wget from-configmap:8081"]
    assert args.config["command"] == ["10.96.0.1", "80"]
    environment = args.config["environment"]
    assert "WEB_SERVICE_PORT=8081" in environment and "WEB_SERVICE_PORT=80" not in environment
    assert len(environment) == len({e.split("=", 1)[0] for e in environment})  # each name once
    assert build(pod(), {"name": "c"}, NO_OBJECTS, "", "") == {}  # no services given: nothing added


class ServicesApi:
    """A master for one informer: `list` answers from `items` (or fails); `watch` replays queued events."""

    def __init__(self, items: list[Obj], fail_lists: int = 0) -> None:
        self.items, self.fail_lists = items, fail_lists
        self.lists = 0
        self.events: list[Obj] = []
        self.cond = threading.Condition()

    def list(self, res: Any, namespace: str = "", **params: str) -> Obj:
        assert res.plural == "services" and namespace == ""  # every namespace, as the kubelet's informer
        self.lists += 1
        if self.lists <= self.fail_lists:
            raise ConnectionFailed("master unreachable")
        return {"metadata": {"resourceVersion": "5"}, "items": list(self.items)}

    def watch(self, res: Any, namespace: str = "", resource_version: str = "", timeout_seconds: int = 300,
              **params: str) -> Iterator[Obj]:
        with self.cond:
            self.cond.wait_for(lambda: bool(self.events), timeout=0.2)
            batch, self.events = self.events, []
        yield from batch

    def send(self, kind: str, obj: Obj) -> None:
        with self.cond:
            self.events.append({"type": kind, "object": obj})
            self.cond.notify_all()


def _wait_for(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_service_links_follow_the_watch() -> None:
    api = ServicesApi([MASTER])
    links = ServiceLinks(api, sync_wait=3.0)  # type: ignore[arg-type]
    try:
        first = links.env(pod())  # starts the watch and waits for the first list
        assert first == service_vars(MASTER)
        links.start()
        links.start()
        assert api.lists == 1  # one list-then-watch, however often it is started
        web = svc("web", "shop", "10.96.1.1", {"port": 80})
        api.send("ADDED", web)
        _wait_for(lambda: "WEB_SERVICE_HOST" in links.env(pod()))
        api.send("DELETED", web)
        _wait_for(lambda: "WEB_SERVICE_HOST" not in links.env(pod()))
    finally:
        links.stop()


def test_no_service_variables_before_the_first_list() -> None:
    api = ServicesApi([MASTER], fail_lists=100)  # the informer backs off 1 s, 2 s, … between lists
    links = ServiceLinks(api, sync_wait=0.2)  # type: ignore[arg-type]
    try:
        with pytest.raises(ConfigError, match=NOT_SYNCED):
            links.env(pod())
        assert api.lists >= 1
        api.fail_lists = 0
        _wait_for(lambda: links.informer.synced.is_set())  # the retry after the 1 s back-off lists
        assert links.env(pod())["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    finally:
        links.stop()
