"""Stream requests checked before the 101 (no Docker): parsing, protocol choice, the runtime being down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.runtime.docker import RuntimeError_
from agent.streams.handler import StreamHandler
from agent.streams.request import StreamError, negotiate, parse
from core.streams import channels


def test_parse_exec_flags_the_go_way_and_kubelet_names() -> None:
    req = parse("/exec/ns/pod/c", "command=sh&command=-c&command=echo+hi&stdin=True&stdout=1&error=t&tty=false")
    assert (req.kind, req.namespace, req.pod, req.container) == ("exec", "ns", "pod", "c")
    assert req.command == ["sh", "-c", "echo hi"] and (req.stdin, req.stdout, req.stderr, req.tty) == \
        (True, True, True, False)
    assert not parse("/exec/ns/pod/c", "command=x&stdout=1&stderr=1&tty=1").stderr  # a TTY merges stderr
    assert parse("/portForward/ns/pod", "port=80,443").ports == (80, 443)


@pytest.mark.parametrize(("path", "query", "code", "words"), [
    ("/exec/ns/pod", "command=x&stdout=1", 404, "/exec/<namespace>"),
    ("/exec/ns/pod/c", "stdout=1", 400, "command"),
    ("/exec/ns/pod/c", "command=x", 400, "at least one of"),
    ("/exec/ns/pod/c", "command=x&stdout=yes", 400, '"yes"'),
    ("/portforward/ns/pod", "ports=0", 400, "port"),
    ("/portforward/ns/pod", "ports=80;81", 400, "port"),
    ("/run/ns/pod/c", "", 404, "not found"),
])
def test_bad_requests(path: str, query: str, code: int, words: str) -> None:
    with pytest.raises(StreamError, match=words) as err:
        parse(path, query)
    assert err.value.code == code
    status = json.loads(err.value.body())
    assert status["kind"] == "Status" and status["code"] == code


def _ws(protocols: str) -> dict[str, str]:
    return {"HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
            "HTTP_SEC_WEBSOCKET_VERSION": "13", "HTTP_SEC_WEBSOCKET_PROTOCOL": protocols}


def test_negotiation() -> None:
    exec_req = parse("/exec/ns/pod/c", "command=x&stdout=1")
    pf = parse("/portforward/ns/pod", "ports=80")
    assert negotiate(exec_req, _ws("v4.channel.k8s.io, v5.channel.k8s.io")).protocol == channels.V5
    assert dict(negotiate(exec_req, _ws("v4.channel.k8s.io")).headers)["Sec-WebSocket-Accept"] == \
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert negotiate(pf, _ws("v5.channel.k8s.io,v4.channel.k8s.io")).protocol == channels.V4
    assert negotiate(pf, _ws("SPDY/3.1+portforward.k8s.io")).protocol == channels.PORTFORWARD_TUNNEL
    spdy = {"HTTP_UPGRADE": "SPDY/3.1", "HTTP_X_STREAM_PROTOCOL_VERSION": "v5.channel.k8s.io, v4.channel.k8s.io"}
    assert negotiate(exec_req, spdy).headers == [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                                 ("X-Stream-Protocol-Version", "v4.channel.k8s.io")]
    for req, env, code in [
        (exec_req, _ws("channel.k8s.io"), 400),
        (exec_req, {**_ws(channels.V5), "HTTP_SEC_WEBSOCKET_VERSION": "8"}, 400),
        (exec_req, {"HTTP_UPGRADE": "SPDY/3.1"}, 400),
        (exec_req, {"HTTP_UPGRADE": "SPDY/3.1", "HTTP_X_STREAM_PROTOCOL_VERSION": "v1.channel.k8s.io"}, 403),
        (pf, {"HTTP_UPGRADE": "SPDY/3.1", "HTTP_X_STREAM_PROTOCOL_VERSION": "v4.channel.k8s.io"}, 403),
        (parse("/portforward/ns/pod", ""), _ws(channels.V4), 400),
        (exec_req, {}, 400),
    ]:
        with pytest.raises(StreamError) as err:
            negotiate(req, env)
        assert err.value.code == code


class _RuntimeDown:
    """Docker not answering, as `DockerRuntime` reports it (its real behaviour is tested in tests/agent/kubelet)."""

    def containers(self, pod_uid: str | None = None) -> list[Any]:
        raise RuntimeError_("list containers: engine gone", "engine gone")


def test_the_runtime_down_is_a_503_status() -> None:
    runtime: Any = _RuntimeDown()
    pod = {"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c"}]}}
    handler = StreamHandler(runtime, lambda ns, name: pod, lambda pid: None)
    got: list[Any] = []
    body = handler({"REQUEST_METHOD": "GET", "PATH_INFO": "/exec/ns/pod/c", "QUERY_STRING": "command=x&stdout=1",
                    **_ws(channels.V5)}, lambda status, headers: got.append(status))
    assert got == ["503 Service Unavailable"]
    status = json.loads(b"".join(body))
    assert status["reason"] == "ServiceUnavailable" and "does not answer" in status["message"]
    assert handler.active == 0
