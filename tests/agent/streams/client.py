"""A test client for the agent's stream endpoints: TLS with a certificate, then our own protocol modules as the client.

It speaks what kubectl and the Python client speak (WebSocket v5/v4 channels,
SPDY v4 streams, the SPDY port-forward raw or tunnelled in WebSocket), so the
agent's endpoints are tested without the master in between.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from core.streams import channels, spdy


@dataclass
class Answer:
    code: int
    headers: dict[str, str]
    body: bytes
    sock: ssl.SSLSocket | None = None
    early: bytes = b""

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def request(port: int, ctx: ssl.SSLContext, method: str, target: str, headers: list[tuple[str, str]],
            timeout: float = 20.0, after: bytes = b"") -> Answer:
    """One request; `after` goes out in the same write as the head (a client that does not wait for the 101)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    sock.sendall((head + "\r\n").encode() + after)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer: {buf!r}")
        buf += chunk
    head_text, _, rest = buf.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if code == 101:
        return Answer(code, hdrs, b"", sock, rest)
    length = int(hdrs.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    sock.close()
    return Answer(code, hdrs, rest)


def ws_headers(protocols: str) -> list[tuple[str, str]]:
    key = base64.b64encode(os.urandom(16)).decode()
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Protocol", protocols)]


def spdy_headers(*versions: str) -> list[tuple[str, str]]:
    return [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
            *[("X-Stream-Protocol-Version", v) for v in versions]]


@dataclass
class Result:
    stdout: bytes = b""
    stderr: bytes = b""
    status: dict[str, Any] = field(default_factory=dict)
    close_code: int | None = None

    @property
    def exit_code(self) -> int:
        if self.status.get("status") == "Success":
            return 0
        causes = (self.status.get("details") or {}).get("causes") or []
        return int(causes[0]["message"]) if causes else -1


def ws_exec(ans: Answer, protocol: str, stdin: bytes | None = None, close_stdin: bool = True,
            resize: tuple[int, int] | None = None, timeout: float = 30.0) -> Result:
    """Run a WebSocket exec session to its end: send stdin (then [255, 0] with v5), collect the rest."""
    assert ans.sock is not None
    conn = channels.ChannelConnection(protocol, client=True)
    sock = ans.sock
    res = Result()
    if resize:
        conn.send(channels.RESIZE, json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
    if stdin is not None:
        if stdin:
            conn.send(channels.STDIN, stdin)
        if close_stdin and protocol == channels.V5:
            conn.close_channel(channels.STDIN)
    sock.sendall(conn.data_to_send())
    status = b""
    pending = ans.early
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = pending or sock.recv(65536)
        pending = b""
        for ev in conn.receive(data):
            if isinstance(ev, channels.ChannelData):
                if ev.channel == channels.STDOUT:
                    res.stdout += ev.data
                elif ev.channel == channels.STDERR:
                    res.stderr += ev.data
                elif ev.channel == channels.ERROR:
                    status += ev.data
            elif isinstance(ev, channels.Closed):
                res.close_code = ev.code
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
        if not data or res.close_code is not None:
            break
    sock.close()
    res.status = json.loads(status) if status else {}
    return res


class SpdyClient:
    """The client end of a SPDY connection: opens streams one by one, waiting for each SYN_REPLY (as kubectl)."""

    def __init__(self, ans: Answer, tunnel: bool = False) -> None:
        assert ans.sock is not None
        self.sock = ans.sock
        self.session = spdy.Session(client=True)
        self.ws = channels.ChannelConnection(channels.PORTFORWARD_TUNNEL, client=True, raw=True) if tunnel else None
        self.frames: list[spdy.Frame] = []
        self.pending = ans.early
        self.closed = False

    def flush(self) -> None:
        out = self.session.data_to_send()
        if self.ws is not None:
            if out:
                self.ws.send_raw(out)
            out = self.ws.data_to_send()
        if out:
            self.sock.sendall(out)

    def pump(self, timeout: float = 10.0) -> bool:
        """Read once; False when the connection ended."""
        if self.pending:
            data, self.pending = self.pending, b""
        else:
            self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
                data = b""
        if not data:
            self.closed = True
            return False
        if self.ws is not None:
            raw = b"".join(ev.data for ev in self.ws.receive(data) if isinstance(ev, channels.Bytes))
        else:
            raw = data
        self.frames += self.session.receive(raw)
        self.flush()
        return True

    def open(self, headers: dict[str, str], timeout: float = 10.0) -> int:
        sid = self.session.open_id()
        self.session.send(spdy.SynStream(sid, {k: [v] for k, v in headers.items()}))
        self.flush()
        deadline = time.monotonic() + timeout
        while not any(isinstance(f, spdy.SynReply) and f.stream_id == sid for f in self.frames):
            if time.monotonic() > deadline or not self.pump(timeout):
                raise TimeoutError(f"no SYN_REPLY for stream {sid}")
        return sid

    def collect(self, sids: dict[int, str], until_fin: set[int], timeout: float = 30.0) -> dict[str, bytes]:
        """Data per stream name until every stream in `until_fin` saw FIN (or the connection ended)."""
        out = {name: bytearray() for name in sids.values()}
        fins: set[int] = set()
        deadline = time.monotonic() + timeout
        done = 0
        while True:
            for f in self.frames[done:]:
                if isinstance(f, spdy.Data) and f.stream_id in sids:
                    out[sids[f.stream_id]] += f.data
                    if f.fin:
                        fins.add(f.stream_id)
                elif isinstance(f, spdy.RstStream):
                    fins.add(f.stream_id)
            done = len(self.frames)
            del self.frames[:done]
            done = 0
            if until_fin <= fins or self.closed or time.monotonic() > deadline:
                return {k: bytes(v) for k, v in out.items()}
            self.pump(max(0.1, deadline - time.monotonic()))


def spdy_exec(ans: Answer, stdin: bytes | None, stdout: bool = True, stderr: bool = True, tty: bool = False,
              resize: tuple[int, int] | None = None, close_stdin: bool = True) -> Result:
    c = SpdyClient(ans)
    sids: dict[int, str] = {c.open({"streamtype": "error"}): "error"}
    stdin_id = c.open({"streamtype": "stdin"}) if stdin is not None else 0
    if stdout:
        sids[c.open({"streamtype": "stdout"})] = "stdout"
    if stderr:
        sids[c.open({"streamtype": "stderr"})] = "stderr"
    if tty:
        resize_id = c.open({"streamtype": "resize"})
        if resize:
            c.session.send_data(resize_id, json.dumps({"Width": resize[0], "Height": resize[1]}).encode())
    if stdin is not None:
        c.session.send_data(stdin_id, stdin, fin=close_stdin)
    c.flush()
    got = c.collect(sids, set(sids))
    c.sock.close()
    return Result(stdout=got.get("stdout", b""), stderr=got.get("stderr", b""),
                  status=json.loads(got["error"]) if got["error"] else {})
