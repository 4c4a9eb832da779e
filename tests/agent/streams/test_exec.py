"""exec and attach on the agent's endpoint, over TLS, into a real container: WebSocket v5/v4 and SPDY v4."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from core.streams import channels
from tests.agent.streams.client import Answer, request, spdy_exec, spdy_headers, ws_exec, ws_headers
from tests.agent.streams.conftest import NS, POD, Agent

pytestmark = pytest.mark.integration


def _q(command: list[str], **flags: bool) -> str:
    return urlencode([("command", c) for c in command] + [(k, "true") for k, on in flags.items() if on])


def _exec_ws(agent: Agent, protocol: str, command: list[str], stdin: bytes | None = None, tty: bool = False,
             offer: str | None = None) -> tuple[Answer, object]:
    q = _q(command, stdin=stdin is not None, stdout=True, stderr=not tty, tty=tty)
    ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(offer or protocol))
    assert ans.code == 101, ans.body
    assert ans.headers["sec-websocket-protocol"] == protocol
    return ans, ws_exec(ans, protocol, stdin, resize=(100, 30) if tty else None)


@pytest.mark.parametrize("protocol", [channels.V5, channels.V4])
def test_websocket_exec_stdout_stderr_and_exit_code(agent: Agent, protocol: str) -> None:
    _, res = _exec_ws(agent, protocol, ["sh", "-c", "echo out; echo err >&2; exit 3"],
                      offer=f"{protocol}" if protocol == channels.V4 else "v5.channel.k8s.io,v4.channel.k8s.io")
    assert res.stdout == b"out\n" and res.stderr == b"err\n"  # type: ignore[attr-defined]
    assert res.exit_code == 3 and res.status["reason"] == "NonZeroExitCode"  # type: ignore[attr-defined]
    assert res.status["details"]["causes"][0] == {"reason": "ExitCode", "message": "3"}  # type: ignore[attr-defined]
    assert res.close_code == 1000  # type: ignore[attr-defined]


def test_websocket_v5_stdin_piped_and_half_closed(agent: Agent) -> None:
    data = os.urandom(300_000)
    _, res = _exec_ws(agent, channels.V5, ["sh", "-c", "cat | sha256sum"], stdin=data)
    assert res.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]
    assert res.exit_code == 0  # type: ignore[attr-defined]


def test_websocket_tty(agent: Agent) -> None:
    q = _q(["sh"], stdin=True, stdout=True, tty=True)
    ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(channels.V5))
    assert ans.code == 101
    res = ws_exec(ans, channels.V5, b"tty; stty size; exit 4\n", close_stdin=False, resize=(100, 30))
    out = res.stdout.replace(b"\r", b"")
    assert b"/dev/pts/" in out and b"30 100" in out, out
    assert res.exit_code == 4


def test_spdy_exec_stdout_stderr_exit_code_and_stdin(agent: Agent) -> None:
    q = _q(["sh", "-c", "cat; echo err >&2; exit 7"], stdin=True, stdout=True, stderr=True)
    ans = request(agent.port, agent.admin, "POST", f"/exec/{NS}/{POD}/app?{q}",
                  spdy_headers("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"))
    assert ans.code == 101 and ans.headers["x-stream-protocol-version"] == "v4.channel.k8s.io"
    data = os.urandom(200_000)
    res = spdy_exec(ans, stdin=data)
    assert res.stdout == data and res.stderr == b"err\n"
    assert res.exit_code == 7


def test_spdy_exec_tty_and_comma_joined_versions(agent: Agent) -> None:
    q = _q(["sh"], stdin=True, stdout=True, tty=True)
    ans = request(agent.port, agent.admin, "POST", f"/exec/{NS}/{POD}/app?{q}",
                  spdy_headers("v4.channel.k8s.io, v3.channel.k8s.io"))
    assert ans.code == 101
    res = spdy_exec(ans, stdin=b"stty size; exit 5\n", stderr=False, tty=True, resize=(90, 20), close_stdin=False)
    assert b"20 90" in res.stdout and res.exit_code == 5


def test_errors_before_the_upgrade_are_statuses(agent: Agent) -> None:
    def ask(path: str, headers: list[tuple[str, str]] | None = None, ctx: object = None) -> Answer:
        return request(agent.port, ctx or agent.admin, "GET", path,  # type: ignore[arg-type]
                       headers if headers is not None else ws_headers(channels.V5))

    q = _q(["true"], stdout=True)
    cases = [
        (ask(f"/exec/{NS}/nosuch/app?{q}"), 404, "NotFound", "nosuch"),
        (ask(f"/exec/{NS}/{POD}/wrong?{q}"), 400, "BadRequest", "wrong"),
        (ask(f"/exec/{NS}/{POD}/app?stdout=maybe&command=true"), 400, "BadRequest", "maybe"),
        (ask(f"/exec/{NS}/{POD}/app?stdout=1"), 400, "BadRequest", "command"),
        (ask(f"/exec/{NS}/{POD}/app?{q}", ws_headers("v1.channel.k8s.io")), 400, "BadRequest", "subprotocol"),
        (ask(f"/exec/{NS}/{POD}/app?{q}", []), 400, "BadRequest", "Upgrade"),
    ]
    for ans, code, reason, word in cases:
        assert ans.code == code, ans.body
        st = ans.status()
        assert (st["kind"], st["code"], st["reason"]) == ("Status", code, reason), st
        assert word in st["message"], st
    spdy = request(agent.port, agent.admin, "POST", f"/exec/{NS}/{POD}/app?{q}", spdy_headers("v1.channel.k8s.io"))
    assert spdy.code == 403 and "x-accepted-stream-protocol-versions" in spdy.headers
    # a node's certificate is refused before anything else
    assert ask(f"/exec/{NS}/{POD}/app?{q}", ctx=agent.node).code == 403


def test_container_not_running_is_a_status(agent: Agent) -> None:
    ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/done?{_q(['true'], stdout=True)}",
                  ws_headers(channels.V5))
    assert ans.code == 400 and "not running" in ans.status()["message"]


def _wait_threads(agent: Agent, at_most: int) -> int:
    deadline = time.monotonic() + 5.0
    while threading.active_count() > at_most and time.monotonic() < deadline:
        time.sleep(0.05)
    return threading.active_count()


def test_200_sequential_and_20_parallel_execs_leave_the_thread_count(agent: Agent) -> None:
    q = _q(["true"], stdout=True)

    def one(i: int) -> int:
        proto = channels.V5 if i % 2 else channels.V4
        if i % 3 == 0:
            ans = request(agent.port, agent.admin, "POST", f"/exec/{NS}/{POD}/app?{q}",
                          spdy_headers("v4.channel.k8s.io"))
            return spdy_exec(ans, stdin=None, stderr=False).exit_code
        ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(proto))
        return ws_exec(ans, proto).exit_code

    one(0)
    before = _wait_threads(agent, 0)
    assert all(one(i) == 0 for i in range(200))
    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(one, range(20))) == [0] * 20
    assert _wait_threads(agent, before) <= before
    assert agent.server.streams.active == 0


def test_a_client_leaving_frees_the_stream(agent: Agent) -> None:
    before = agent.server.streams.active
    q = _q(["sleep", "3600"], stdout=True)
    ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(channels.V5))
    assert ans.code == 101 and ans.sock is not None
    deadline = time.monotonic() + 5.0
    while agent.server.streams.active == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert agent.server.streams.active == before + 1
    left_at = time.monotonic()
    ans.sock.close()
    while agent.server.streams.active > before and time.monotonic() < left_at + 5.0:
        time.sleep(0.02)
    assert agent.server.streams.active == before
    assert time.monotonic() - left_at < 1.0


def test_cap_on_concurrent_streams_answers_429(agent: Agent) -> None:
    q = _q(["sleep", "3600"], stdout=True)
    held = []
    try:
        for _ in range(agent.server.streams.limits.max_streams):
            ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(channels.V5))
            assert ans.code == 101
            held.append(ans)
        over = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(channels.V5))
        assert over.code == 429 and over.status()["reason"] == "TooManyRequests"
    finally:
        for ans in held:
            assert ans.sock is not None
            ans.sock.close()


def test_an_idle_stream_ends_after_the_idle_timeout_pings_or_not(agent: Agent) -> None:
    """No stream data for the idle timeout ends the session, though the client pings (kubectl does, every 5 s)."""
    import json

    from wsproto.events import Ping

    from agent.streams.handler import StreamLimits

    handler = agent.server.streams
    saved = handler.limits
    handler.limits = StreamLimits(max_streams=saved.max_streams, idle_timeout=1.0)
    try:
        q = _q(["sleep", "3600"], stdout=True)
        ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(channels.V5))
        assert ans.code == 101 and ans.sock is not None
        conn = channels.ChannelConnection(channels.V5, client=True)
        start = time.monotonic()
        status, close_code, pongs = b"", None, 0
        if ans.early:
            conn.receive(ans.early)
        ans.sock.settimeout(0.2)
        while close_code is None and time.monotonic() - start < 10:
            ans.sock.sendall(conn.ws.send(Ping(b"p")))
            try:
                data = ans.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            for ev in conn.receive(data):
                if isinstance(ev, channels.ChannelData) and ev.channel == channels.ERROR:
                    status += ev.data
                elif isinstance(ev, channels.Closed):
                    close_code = ev.code
            pongs += data.count(b"\x8a")
        took = time.monotonic() - start
        ans.sock.close()
    finally:
        handler.limits = saved
    assert pongs > 0  # the pings were answered, and did not keep the stream alive
    assert 0.9 <= took < 5, took
    assert json.loads(status)["reason"] == "Timeout" and close_code == 1000


@pytest.mark.parametrize("protocol", [channels.V5, "spdy"])
def test_a_command_that_stops_reading_stdin_still_reports_its_exit_code(agent: Agent, protocol: str) -> None:
    q = _q(["sh", "-c", "head -c 10 >/dev/null; echo read-enough; exit 2"], stdin=True, stdout=True, stderr=True)
    data = os.urandom(8_000_000)
    if protocol == "spdy":
        ans = request(agent.port, agent.admin, "POST", f"/exec/{NS}/{POD}/app?{q}", spdy_headers(channels.V4))
        res = spdy_exec(ans, stdin=data)
    else:
        ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(protocol))
        res = ws_exec(ans, protocol, data)
        assert res.close_code == 1000
    assert res.stdout == b"read-enough\n" and res.exit_code == 2, res


def test_bytes_sent_with_the_request_head_are_not_lost(agent: Agent) -> None:
    """A client that sends its first frames right behind the request: the server had read them already."""
    conn = channels.ChannelConnection(channels.V5, client=True)
    conn.send(channels.STDIN, b"sent before the 101\n")
    conn.close_channel(channels.STDIN)
    q = _q(["cat"], stdin=True, stdout=True)
    ans = request(agent.port, agent.admin, "GET", f"/exec/{NS}/{POD}/app?{q}", ws_headers(channels.V5),
                  after=conn.data_to_send())
    assert ans.code == 101
    res = ws_exec(ans, channels.V5)
    assert res.stdout == b"sent before the 101\n" and res.exit_code == 0
