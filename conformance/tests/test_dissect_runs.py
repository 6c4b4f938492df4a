"""The dissector's small-frame path: runs of data frames are kept compact and judged by their flags.

A run must read exactly as the frames one by one did (the same items, offsets
and views), and the validator must still find a wrong frame in the middle of
a run, at its own offset.
"""

from __future__ import annotations

import itertools
import struct

from zmtp_conformance.capture import tcp
from zmtp_conformance.capture.dissect import Decoder, FrameRun
from zmtp_conformance.capture.validator import validate_stream

GREETING = b"\xff" + bytes(8) + b"\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31)


def ready(socket_type: bytes) -> bytes:
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack("!I", len(socket_type)) + socket_type
    return bytes([0x04, len(body)]) + body


def frame(body: bytes, flags: int = 0) -> bytes:
    if len(body) > 255:
        return bytes([flags | 0x02]) + struct.pack("!Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def stream(client_sends: bytes) -> tcp.Stream:
    st = tcp.Stream(0, ("127.0.0.1", 40000), ("127.0.0.1", 5555), 0.0)
    st.to_server.data += GREETING + ready(b"PUSH") + client_sends
    st.to_client.data += GREETING + ready(b"PULL")
    return st


def traffic(n: int) -> bytes:
    # Messages of one and of two frames, short and long, with a PING among them.
    out = b""
    for i in range(n):
        out += frame(b"m%d" % i, 0x01) + frame(b"x" * (300 if i % 7 == 0 else 40))
    return out + frame(b"\x04PING\x00\x00", 0x04) + frame(b"after")


def test_runs_read_as_the_frames_one_by_one():
    data = GREETING + traffic(50) + frame(b"cut short")[:-3]
    dec = Decoder()
    entries = dec.decode_entries(data)
    runs = [e for e in entries if isinstance(e, FrameRun)]
    assert len(runs) == 2 and runs[0].count == 100 and runs[1].count == 1
    items = dec.items
    assert [it.kind for it in items].count("frame") == 101
    assert items[-1].kind == "truncated" and items[-2].name == "" and items[-3].name == "PING"
    # Each frame where it is, with its own view: the offsets chain and the bodies are the octets sent.
    frames = [it for it in items if it.kind == "frame"]
    for a, b in itertools.pairwise(items):
        assert a.end == b.offset
    assert (
        bytes(frames[0].body) == b"m0" and frames[0].flags == 0x01 and frames[1].fields == {"size": 300, "long": True}
    )
    assert bytes(frames[-1].body) == b"after"
    assert dec.items is items  # expanded once
    # decode() gives the items, as it always did
    assert [(it.kind, it.offset) for it in Decoder().decode(data)] == [(it.kind, it.offset) for it in items]


def test_a_wrong_frame_inside_a_run_is_found_at_its_offset():
    clean = traffic(200)
    assert validate_stream(stream(clean)) == []
    bad_at = len(traffic(120)) - len(frame(b"\x04PING\x00\x00", 0x04) + frame(b"after"))
    wrong = clean[:bad_at] + bytes([0x08]) + clean[bad_at + 1 :]  # reserved bit 3 on one frame
    (v,) = validate_stream(stream(wrong))
    assert v.check == "frame-reserved-flags" and v.offset == len(GREETING + ready(b"PUSH")) + bad_at


def test_data_after_error_inside_a_run_is_reported_once():
    error = frame(b"\x05ERROR\x00", 0x04)
    (v,) = validate_stream(stream(error + traffic(30)))
    assert v.check == "after-error" and v.offset == len(GREETING + ready(b"PUSH") + error)


def test_a_message_where_the_handshake_calls_for_ready_is_found_in_a_run():
    st = tcp.Stream(0, ("127.0.0.1", 40000), ("127.0.0.1", 5555), 0.0)
    st.to_server.data += GREETING + traffic(10)
    st.to_client.data += GREETING + ready(b"PULL")
    found = validate_stream(st)
    assert [v.check for v in found] == ["handshake-order"] and found[0].offset == len(GREETING)
