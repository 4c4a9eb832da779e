"""SPDY/3.1 framing: frames laid out as draft 3 says, header blocks through both zlib contexts, bad input refused."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from core.streams import spdy
from core.streams.dictionary import DICTIONARY


def test_the_dictionary_is_the_spec_s() -> None:
    assert len(DICTIONARY) == 1423
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert hashlib.sha256(DICTIONARY).hexdigest() == "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


# Hand-assembled from draft-mbelshe-httpbis-spdy-00 §2.2 (control: 1 bit, version 15, type 16, flags 8, length 24;
# data: 0 bit, stream id 31, flags 8, length 24).
VECTORS = [
    (spdy.Ping(1), bytes.fromhex("80030006 00000004 00000001")),
    (spdy.RstStream(3, spdy.CANCEL), bytes.fromhex("80030003 00000008 00000003 00000005")),
    (spdy.GoAway(7, 0), bytes.fromhex("80030007 00000008 00000007 00000000")),
    (spdy.WindowUpdate(5, 65536), bytes.fromhex("80030009 00000008 00000005 00010000")),
    (spdy.Settings(((0, 7, 65536),)), bytes.fromhex("80030004 0000000c 00000001 00000007 00010000")),
    (spdy.Data(1, b"hi", fin=True), bytes.fromhex("00000001 01000002 6869")),
    (spdy.Data(0x7FFFFFFF, b""), bytes.fromhex("7fffffff 00000000")),
]


@pytest.mark.parametrize(("frame", "wire"), VECTORS)
def test_frames_match_the_draft_layout_both_ways(frame: spdy.Frame, wire: bytes) -> None:
    assert spdy.Session().encode(frame) == wire
    assert spdy.Session(client=True).receive(wire) == [frame]


def test_syn_stream_and_reply_round_trip_through_one_context_per_direction() -> None:
    client, server = spdy.Session(client=True), spdy.Session()
    frames = []
    for i, kind in enumerate(["error", "stdin", "stdout", "stderr", "resize"]):
        sid = client.open_id()
        assert sid == 2 * i + 1
        client.send(spdy.SynStream(sid, {"streamtype": [kind], "port": ["8080"], "x": ["a", "b"]}, priority=2))
    wire = client.data_to_send()
    # the same headers compress to much less the second time: the context carries over
    for chunk in (wire[:5], wire[5:40], wire[40:]):  # frames split anywhere
        frames += server.receive(chunk)
    assert [f.header("streamtype") for f in frames if isinstance(f, spdy.SynStream)] == \
        ["error", "stdin", "stdout", "stderr", "resize"]
    first = frames[0]
    assert isinstance(first, spdy.SynStream) and first.headers["x"] == ["a", "b"] and first.priority == 2
    server.send(spdy.SynReply(1))
    server.send(spdy.SynReply(3, {"a": ["b"]}, fin=True))
    assert client.receive(server.data_to_send()) == [spdy.SynReply(1), spdy.SynReply(3, {"a": ["b"]}, fin=True)]


def test_header_blocks_are_sync_flushed_zlib_with_the_dictionary() -> None:
    codec = spdy.HeaderCodec()
    block = codec.encode({"streamtype": ["error"]})
    inflate = zlib.decompressobj()
    with pytest.raises(zlib.error):  # needs the dictionary: FDICT set, DICTID = adler32(dictionary)
        inflate.decompress(block)
    assert block[1] & 0x20 and struct.unpack(">I", block[2:6])[0] == zlib.adler32(DICTIONARY)
    raw = zlib.decompressobj(zdict=DICTIONARY).decompress(block)
    assert raw == struct.pack(">I", 1) + struct.pack(">I", 10) + b"streamtype" + struct.pack(">I", 5) + b"error"


def test_a_peer_ping_is_echoed_and_our_own_is_not() -> None:
    server = spdy.Session()
    assert server.receive(spdy.Session().encode(spdy.Ping(1))) == [spdy.Ping(1)]
    assert server.data_to_send() == spdy.Session().encode(spdy.Ping(1))
    server.receive(spdy.Session().encode(spdy.Ping(2)))  # even: a server's ping coming back
    assert server.data_to_send() == b""


def test_large_data_is_cut_into_chunks() -> None:
    s = spdy.Session()
    s.send_data(5, b"x" * (spdy.MAX_DATA_CHUNK * 2 + 10), fin=True)
    frames = spdy.Session(client=True).receive(s.data_to_send())
    assert [len(f.data) for f in frames if isinstance(f, spdy.Data)] == [spdy.MAX_DATA_CHUNK] * 2 + [10]
    assert [f.fin for f in frames if isinstance(f, spdy.Data)] == [False, False, True]


def test_unknown_and_noop_control_frames_are_skipped() -> None:
    wire = bytes.fromhex("80030005 00000000") + bytes.fromhex("8003000f 00000002 abcd") + spdy.Session().encode(
        spdy.Ping(3))
    assert spdy.Session().receive(wire) == [spdy.Ping(3)]


@pytest.mark.parametrize(("wire", "words"), [
    (bytes.fromhex("80020006 00000004 00000001"), "version 2"),
    (bytes.fromhex("80030006 00000002 0000"), "needs 4"),
    (bytes.fromhex("00000000 00000001 00"), "stream 0"),
    (bytes.fromhex("80030001 0000000c 00000001 00000000 0000") + b"\x00\x01", "inflate"),
    (bytes.fromhex("80030001 ffffffff"), "at most"),
])
def test_malformed_input_is_a_clear_protocol_error(wire: bytes, words: str) -> None:
    with pytest.raises(spdy.ProtocolError, match=words):
        spdy.Session().receive(wire)


def test_malformed_header_blocks() -> None:
    def block(raw: bytes) -> bytes:
        c = zlib.compressobj(zdict=DICTIONARY)
        return c.compress(raw) + c.flush(zlib.Z_SYNC_FLUSH)

    for raw, words in [
        (struct.pack(">I", 1) + struct.pack(">I", 50) + b"short", "inside a name"),
        (struct.pack(">I", 1) + struct.pack(">I", 1) + b"A" + struct.pack(">I", 0), "lower-case"),
        (struct.pack(">I", 1000), "at most"),
        (struct.pack(">I", 0) + b"junk", "after the last"),
        (b"\x00", "shorter"),
    ]:
        with pytest.raises(spdy.ProtocolError, match=words):
            spdy.HeaderCodec().decode(block(raw))
    bomb = struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", 400_000) + b"a" * 400_000
    with pytest.raises(spdy.ProtocolError, match="larger than"):
        spdy.HeaderCodec().decode(block(bomb))
