"""The fairness gate on its own: shares per identity, 429 with Retry-After beyond them, and who is exempt."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from master.api.fairness import Fairness, Shares, long_running

Obj = dict[str, Any]


def node_env(name: str, path: str, query: str = "", method: str = "GET") -> Obj:
    return {"SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_S_DN_CN": f"system:node:{name}",
            "SSL_CLIENT_S_DN_O": "system:nodes", "PATH_INFO": path, "QUERY_STRING": query,
            "REQUEST_METHOD": method, "REMOTE_ADDR": "192.0.2.7"}


def admin_env(path: str, query: str = "") -> Obj:
    return {"SSL_CLIENT_VERIFY": "SUCCESS", "SSL_CLIENT_S_DN_CN": "admin", "SSL_CLIENT_S_DN_O": "system:masters",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET"}


def app(environ: Obj, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body() -> Iterator[bytes]:
        yield b"ok"
    return body()


class Call:
    def __init__(self, gate: Fairness, environ: Obj) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            self.status, self.headers = status, headers
        self.body = gate(environ, sr)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def test_watches_beyond_an_identitys_share_get_429_and_a_retry_after() -> None:
    gate = Fairness(app, shares=Shares(max_long_running=100, max_long_running_per_identity=3))
    watches = [Call(gate, node_env("pi-1", "/api/v1/pods", "watch=true")) for _ in range(3)]
    assert all(w.status.startswith("200") for w in watches)
    refused = Call(gate, node_env("pi-1", "/api/v1/pods", "watch=1"))
    assert refused.status == "429 Too Many Requests" and ("Retry-After", "1") in refused.headers
    assert b'"reason":"TooManyRequests"' in b"".join(refused.body)
    assert Call(gate, node_env("pi-2", "/api/v1/pods", "watch=true")).status.startswith("200")  # another node
    assert Call(gate, admin_env("/api/v1/pods", "watch=true")).status.startswith("200")  # the admin
    watches[0].close()  # a stream that ends gives its share back
    assert gate.held("system:node:pi-1") == (2, 0)
    assert Call(gate, node_env("pi-1", "/api/v1/pods", "watch=true")).status.startswith("200")


def test_the_total_of_long_running_requests_leaves_room_for_short_ones() -> None:
    gate = Fairness(app, shares=Shares(max_long_running=2, max_long_running_per_identity=5))
    Call(gate, node_env("a", "/api/v1/pods", "watch=true"))
    Call(gate, node_env("b", "/api/v1/pods", "watch=true"))
    assert Call(gate, node_env("c", "/api/v1/pods", "watch=true")).status.startswith("429")
    assert Call(gate, node_env("c", "/api/v1/pods")).status.startswith("200")


def test_heartbeats_are_never_refused() -> None:
    gate = Fairness(app, shares=Shares(max_in_flight_per_identity=1))
    held = Call(gate, node_env("pi-1", "/api/v1/pods"))  # one short request in flight: the share
    assert Call(gate, node_env("pi-1", "/api/v1/configmaps")).status.startswith("429")
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/pi-1"
    assert Call(gate, node_env("pi-1", lease, method="PATCH")).status.startswith("200")
    assert Call(gate, node_env("pi-1", "/api/v1/nodes/pi-1/status", method="PATCH")).status.startswith("200")
    held.close()


def test_what_counts_as_long_running() -> None:
    assert long_running({"PATH_INFO": "/api/v1/pods", "QUERY_STRING": "watch=true"})
    assert long_running({"PATH_INFO": "/api/v1/namespaces/d/pods/p/log", "QUERY_STRING": "follow=true&tailLines=5"})
    assert long_running({"PATH_INFO": "/api/v1/namespaces/d/pods/p/exec", "QUERY_STRING": "command=sh"})
    assert not long_running({"PATH_INFO": "/api/v1/namespaces/d/pods/p/log", "QUERY_STRING": ""})
    assert not long_running({"PATH_INFO": "/api/v1/pods", "QUERY_STRING": "watch=false"})
