"""Framing (RFC 23 "Framing"): short/long sizes, flags, the decoder's limits."""

import pytest

from zmtp.errors import MessageTooLarge, ProtocolError
from zmtp.frame import COMMAND, LONG, MORE, FrameDecoder, encode_frame, encode_message_bytes, frame_header


@pytest.mark.parametrize(
    "size,header",
    [
        (0, b"\x00\x00"),
        (255, b"\x00\xff"),
        (256, b"\x02" + (256).to_bytes(8, "big")),
        (70000, b"\x02" + (70000).to_bytes(8, "big")),
    ],
)
def test_short_long_boundary(size, header):
    assert frame_header(size) == header
    assert encode_frame(b"x" * size)[: len(header)] == header


def test_flags_more_and_command():
    assert encode_frame(b"a", more=True)[:2] == b"\x01\x01"
    assert encode_frame(b"a" * 300, more=True)[0] == MORE | LONG
    assert encode_frame(b"a", command=True)[0] == COMMAND


def test_multipart_sets_more_on_all_but_last():
    raw = encode_message_bytes([b"a", b"", b"c"])
    assert raw == b"\x01\x01a" + b"\x01\x00" + b"\x00\x01c"


def test_decoder_roundtrip_across_boundaries():
    dec = FrameDecoder()
    bodies = [b"", b"x" * 255, b"y" * 256, b"z" * 100000]
    data = b"".join(encode_frame(b) for b in bodies)
    out = []
    for i in range(0, len(data), 997):
        dec.feed(data[i : i + 997])
        while (f := dec.next_frame()) is not None:
            out.append(f[1])
    assert out == bodies


def test_decoder_accepts_long_encoding_of_small_frames():
    # libzmq accepts it; RFC says SHOULD use short, so it is not an error.
    dec = FrameDecoder()
    dec.feed(b"\x02" + (3).to_bytes(8, "big") + b"abc")
    assert dec.next_frame() == (LONG, b"abc")


@pytest.mark.parametrize("flags", [0x08, 0x10, 0x80, 0xFF])
def test_reserved_bits_are_a_protocol_error(flags):
    dec = FrameDecoder()
    dec.feed(bytes((flags, 0)))
    with pytest.raises(ProtocolError, match="reserved"):
        dec.next_frame()


def test_size_over_2_63_is_refused_from_the_header_alone():
    dec = FrameDecoder()
    dec.feed(b"\x02" + b"\xff" * 8)
    with pytest.raises(ProtocolError, match="2\\^63"):
        dec.next_frame()


def test_max_size_is_checked_before_the_body_arrives():
    dec = FrameDecoder(max_size=100)
    dec.feed(b"\x02" + (1 << 40).to_bytes(8, "big"))  # a terabyte announced, nothing sent
    with pytest.raises(MessageTooLarge):
        dec.next_frame()


def test_max_size_exactly_is_allowed():
    dec = FrameDecoder(max_size=100)
    dec.feed(encode_frame(b"x" * 100))
    assert dec.next_frame()[1] == b"x" * 100
    dec.feed(encode_frame(b"x" * 101))
    with pytest.raises(MessageTooLarge):
        dec.next_frame()


@pytest.mark.parametrize("limit", [100, 255, None])
def test_batch_reader_stops_at_a_frame_over_the_limit_and_cuts_the_rest(limit):
    # The batch reader (feed_messages) takes short frames on a path of their own; a limit
    # below 255 must still stop it at a short frame over the limit, where next_frame refuses.
    dec = FrameDecoder(max_size=limit)
    stream = encode_message_bytes([b"t", b"a" * 100]) + encode_message_bytes([b"b" * 100]) + encode_frame(b"c" * 101)
    partial: list[bytes] = []
    got = dec.feed_messages(stream, partial)
    assert got[:2] == [[b"t", b"a" * 100], [b"b" * 100]]
    if limit == 100:
        assert len(got) == 2
        with pytest.raises(MessageTooLarge):
            dec.next_frame()
    else:
        assert got[2:] == [[b"c" * 101]]
    assert partial == []


def test_incomplete_frames_wait():
    dec = FrameDecoder()
    dec.feed(b"\x02\x00\x00")
    assert dec.next_frame() is None
    dec.feed(b"\x00\x00\x00\x00\x00\x01")
    assert dec.next_frame() is None
    dec.feed(b"!")
    assert dec.next_frame() == (LONG, b"!")


def test_huge_announced_size_allocates_only_what_arrives():
    # No max_msg_size: the frame is legal, but memory follows the bytes that
    # actually arrive, never the size a 9-octet header claims.
    dec = FrameDecoder()
    dec.feed(b"\x02" + (1 << 60).to_bytes(8, "big") + b"x" * 1000)
    assert dec.next_frame() is None
    view = dec.big_buffer()
    assert view is not None and len(view) <= 1 << 20


def test_large_frame_read_in_place_through_big_buffer():
    body = bytes(range(256)) * 1024  # 256 KiB
    raw = encode_frame(body)
    dec = FrameDecoder()
    dec.feed(raw[:1000])
    assert dec.next_frame() is None
    pos = 1000
    while (view := dec.big_buffer()) is not None:
        n = min(len(view), 50000, len(raw) - pos)
        view[:n] = raw[pos : pos + n]
        dec.big_filled(n)
        pos += n
    assert dec.next_frame() == (LONG, body)
    dec.feed(encode_frame(b"after"))
    assert dec.read_frames() == [(0, b"after")]


def test_batch_encoding_equals_one_by_one():
    from zmtp.frame import encode_message, encode_messages

    messages = [[b""], [b"a", b"b" * 300], [b"x" * 255, b"", b"y" * 256], [b"z" * 256], [b"z" * 70000]]
    messages += [[b"w" * n] for n in range(256, 1400)]  # more sizes than the long-header cache keeps
    messages += [[b"z" * 256], [b"v" * 300, b"z" * 256]]
    chunks, total = encode_messages(messages)
    assert b"".join(chunks) == b"".join(b"".join(encode_message(m)) for m in messages)
    assert total == sum(len(f) for m in messages for f in m)
    with pytest.raises(ValueError, match="at least one frame"):
        encode_messages([[b"ok"], []])
