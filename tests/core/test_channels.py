"""The v4/v5 channel protocol over wsproto: channels, the v5 close signal, Status and resize, bad input refused."""

from __future__ import annotations

import json

import pytest

from core.streams import channels
from core.streams.channels import ChannelConnection, ChannelData, Closed


def _pair(protocol: str = channels.V5) -> tuple[ChannelConnection, ChannelConnection]:
    return ChannelConnection(protocol, client=True), ChannelConnection(protocol)


def test_accept_token_matches_rfc_6455_example() -> None:
    assert channels.accept_token("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_subprotocol_choice() -> None:
    offers = channels.offered("v4.channel.k8s.io, v5.channel.k8s.io")
    assert channels.choose(offers, channels.EXEC_PROTOCOLS) == channels.V5
    assert channels.choose(["v4.channel.k8s.io"], channels.EXEC_PROTOCOLS) == channels.V4
    assert channels.choose(["channel.k8s.io"], channels.EXEC_PROTOCOLS) is None


def test_channel_bytes_and_v5_close_signal_round_trip() -> None:
    client, server = _pair()
    client.send(channels.STDIN, b"hello")
    client.send(channels.RESIZE, b'{"Width":80,"Height":24}')
    client.close_channel(channels.STDIN)
    wire = client.data_to_send()
    assert wire[0] == 0x82  # FIN + binary; masked as a client must
    events = []
    for i in range(0, len(wire), 3):  # bytes arriving in small pieces
        events += server.receive(wire[i:i + 3])
    merged: dict[int, bytes] = {}
    for ev in events:
        if isinstance(ev, ChannelData):
            merged[ev.channel] = merged.get(ev.channel, b"") + ev.data
    assert merged == {0: b"hello", 4: b'{"Width":80,"Height":24}'}
    assert events[-1] == channels.ChannelClosed(channels.STDIN)


def test_server_output_status_and_close_1000() -> None:
    client, server = _pair()
    server.send(channels.STDOUT, b"")  # the kubelet's first empty message
    server.send(channels.STDOUT, b"x" * (channels.MAX_CHUNK + 1))
    server.send(channels.ERROR, channels.exit_status(2))
    server.close()
    events = client.receive(server.data_to_send())
    out = b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == 1)
    assert out == b"x" * (channels.MAX_CHUNK + 1)
    status = json.loads(b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == 3))
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0] == {"reason": "ExitCode",
                                                                                          "message": "2"}
    assert events[-1] == Closed(1000, "")


def test_a_client_close_is_answered() -> None:
    client, server = _pair()
    client.close(1000)
    assert server.receive(client.data_to_send()) == [Closed(1000, "")]
    assert client.receive(server.data_to_send()) == [Closed(1000, "")]


def test_success_status() -> None:
    assert json.loads(channels.exit_status(0)) == {"metadata": {}, "status": "Success"}


@pytest.mark.parametrize("protocol", [channels.V4, channels.V5])
def test_text_messages_and_bad_close_signals_are_protocol_errors(protocol: str) -> None:
    from wsproto.events import BytesMessage, TextMessage

    client, server = _pair(protocol)
    with pytest.raises(channels.ProtocolError, match="text message"):
        server.receive(client.ws.send(TextMessage("0hello")))
    client, server = _pair(protocol)
    with pytest.raises(channels.ProtocolError):
        server.receive(client.ws.send(BytesMessage(bytes([255, 0, 0]) if protocol == channels.V5 else b"\xff\x00")))
    client, server = _pair(protocol)
    with pytest.raises(channels.ProtocolError, match="channel byte"):
        server.receive(client.ws.send(BytesMessage(b"")))


def test_garbage_ends_the_connection_with_1002() -> None:
    server = ChannelConnection()
    events = server.receive(b"\x8f\x00")  # an unknown opcode: wsproto closes with "protocol error"
    assert len(events) == 1 and isinstance(events[0], Closed) and events[0].code == 1002
    assert server.closed and server.data_to_send().startswith(b"\x88")


def test_raw_mode_passes_payloads() -> None:
    client = ChannelConnection(channels.PORTFORWARD_TUNNEL, client=True, raw=True)
    server = ChannelConnection(channels.PORTFORWARD_TUNNEL, raw=True)
    client.send_raw(b"\x80\x03\x00\x06")
    assert server.receive(client.data_to_send()) == [channels.Bytes(b"\x80\x03\x00\x06")]


def test_resize_decoder() -> None:
    d = channels.ResizeDecoder()
    assert d.feed(b'{"Width":80,"Height":24}{"Width":1') == [(80, 24)]
    assert d.feed(b'00,"Height":30}\n') == [(100, 30)]
    with pytest.raises(channels.ProtocolError):
        d.feed(b'{"Width":"x","Height":1}')
    with pytest.raises(channels.ProtocolError):
        channels.ResizeDecoder().feed(b"[1,2]")
