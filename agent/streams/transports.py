"""The client side of an exec or attach stream, WebSocket channels or SPDY streams, behind one interface.

The session loop (`remotecommand`) only sees stdin bytes, stdin's end, terminal
sizes and the client leaving going in, and stdout/stderr bytes and a final
Status going out; which wire protocol carries them is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.streams import channels, spdy

STDOUT, STDERR = channels.STDOUT, channels.STDERR


@dataclass(frozen=True)
class Input:
    kind: str  # "stdin", "stdin-closed", "resize", "gone"
    data: bytes = b""
    size: tuple[int, int] = (0, 0)


class WebSocketTransport:
    """v4/v5 channels over a WebSocket (the handshake is already answered)."""

    def __init__(self, protocol: str, stdout: bool, stderr: bool) -> None:
        self.conn = channels.ChannelConnection(protocol)
        self.ready = True
        self.resize = channels.ResizeDecoder()
        # As the kubelet does: an empty message on the first writable channel right after the upgrade.
        self.conn.send(STDOUT if stdout else STDERR if stderr else channels.ERROR, b"")

    def receive(self, data: bytes) -> list[Input]:
        out: list[Input] = []
        for ev in self.conn.receive(data):
            if isinstance(ev, channels.ChannelData):
                if ev.channel == channels.STDIN:
                    out.append(Input("stdin", ev.data))
                elif ev.channel == channels.RESIZE:
                    out += [Input("resize", size=s) for s in self.resize.feed(ev.data)]
            elif isinstance(ev, channels.ChannelClosed) and ev.channel == channels.STDIN:
                out.append(Input("stdin-closed"))
            elif isinstance(ev, channels.Closed):
                out.append(Input("gone"))
        if not data:
            out.append(Input("gone"))
        return out

    def output(self, channel: int, data: bytes) -> None:
        self.conn.send(channel, data)

    def finish(self, status: bytes) -> None:
        self.conn.send(channels.ERROR, status)
        self.conn.close(1000)

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()


class SpdyTransport:
    """v4 streams over SPDY/3.1: the client opens error, stdin, stdout, stderr, resize; each is answered at once."""

    def __init__(self, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> None:
        self.session = spdy.Session()
        self.expected = {"error"} | {n for n, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr),
                                                      ("resize", tty)) if on}
        self.streams: dict[str, int] = {}
        self.kinds: dict[int, str] = {}
        self.resize = channels.ResizeDecoder()

    @property
    def ready(self) -> bool:
        return self.expected <= self.streams.keys()

    def receive(self, data: bytes) -> list[Input]:
        if not data:
            return [Input("gone")]
        out: list[Input] = []
        for frame in self.session.receive(data):
            if isinstance(frame, spdy.SynStream):
                kind = frame.header("streamtype")
                self.session.send(spdy.SynReply(frame.stream_id))
                if kind in self.streams or not kind:
                    self.session.send(spdy.RstStream(frame.stream_id, spdy.PROTOCOL_ERROR))
                    continue
                self.streams[kind], self.kinds[frame.stream_id] = frame.stream_id, kind
                if frame.fin and kind == "stdin":
                    out.append(Input("stdin-closed"))
            elif isinstance(frame, spdy.Data):
                kind = self.kinds.get(frame.stream_id, "")
                if kind == "stdin":
                    if frame.data:
                        out.append(Input("stdin", frame.data))
                    if frame.fin:
                        out.append(Input("stdin-closed"))
                elif kind == "resize" and frame.data:
                    out += [Input("resize", size=s) for s in self.resize.feed(frame.data)]
            elif isinstance(frame, spdy.RstStream) and self.kinds.get(frame.stream_id) == "stdin":
                out.append(Input("stdin-closed"))
            elif isinstance(frame, spdy.GoAway):
                out.append(Input("gone"))
        return out

    def output(self, channel: int, data: bytes) -> None:
        sid = self.streams.get("stdout" if channel == STDOUT else "stderr")
        if sid is not None and data:
            self.session.send_data(sid, data)

    def finish(self, status: bytes) -> None:
        if "error" in self.streams:
            self.session.send_data(self.streams["error"], status, fin=True)
        for kind in ("stdout", "stderr"):
            if kind in self.streams:
                self.session.send_data(self.streams[kind], b"", fin=True)

    def data_to_send(self) -> bytes:
        return self.session.data_to_send()
