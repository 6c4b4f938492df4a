"""The greeting, from the byte layout of RFC 23 / RFC 37 "Version Negotiation"."""

import pytest

from zmtp.connection import Connection, State
from zmtp.errors import HandshakeError, ProtocolError
from zmtp.events import GreetingReceived
from zmtp.greeting import Greeting, decode_mechanism, encode_mechanism, encode_signature

LIBZMQ_NULL_GREETING = bytes.fromhex("ff00000000000000017f0301") + b"NULL" + b"\x00" * 16 + b"\x00" + b"\x00" * 31


def test_layout_matches_rfc():
    raw = Greeting().encode()
    assert len(raw) == 64
    assert raw[0] == 0xFF and raw[9] == 0x7F
    assert raw[10:12] == b"\x03\x01"
    assert raw[12:32] == b"NULL" + b"\x00" * 16
    assert raw[32] == 0
    assert raw[33:] == b"\x00" * 31


def test_our_greeting_equals_libzmqs_byte_for_byte():
    conn = Connection("DEALER", as_server=False)
    first = conn.data_to_send()
    assert first == LIBZMQ_NULL_GREETING[:10]
    conn.receive_data(LIBZMQ_NULL_GREETING[:10])
    assert conn.data_to_send() == LIBZMQ_NULL_GREETING[10:11]
    conn.receive_data(LIBZMQ_NULL_GREETING[10:11])
    assert conn.data_to_send() == LIBZMQ_NULL_GREETING[11:]


def test_staged_first_ten_octets_go_out_before_anything_is_read():
    # RFC 23: libzmq waits for our signature before it sends its major version.
    conn = Connection("PUSH", as_server=True)
    assert conn.data_to_send() == encode_signature(0)
    assert conn.data_to_send() == b""  # nothing more until the peer speaks


def test_signature_padding_carries_identity_length_plus_one():
    assert encode_signature(5) == b"\xff" + (6).to_bytes(8, "big") + b"\x7f"


def test_padding_is_not_validated():
    raw = bytearray(LIBZMQ_NULL_GREETING)
    raw[1:9] = b"\xde\xad\xbe\xef\x12\x34\x56\x78"
    conn = Connection("DEALER", as_server=False)
    events = conn.receive_data(bytes(raw))
    assert events == [GreetingReceived((3, 1), "NULL", False)]


@pytest.mark.parametrize("major,minor,expected", [(3, 0, (3, 0)), (3, 1, (3, 1)), (3, 7, (3, 1)), (4, 0, (3, 1))])
def test_higher_versions_are_accepted_and_answered_as_3x(major, minor, expected):
    raw = bytearray(LIBZMQ_NULL_GREETING)
    raw[10], raw[11] = major, minor
    conn = Connection("DEALER", as_server=False)
    conn.receive_data(bytes(raw))
    assert conn.version == expected
    out = conn.data_to_send()
    assert out[10:12] == b"\x03\x01"  # our greeting still says 3.1


def test_mechanism_mismatch_closes():
    raw = bytearray(LIBZMQ_NULL_GREETING)
    raw[12:32] = encode_mechanism("PLAIN")
    conn = Connection("DEALER", as_server=False)
    with pytest.raises(HandshakeError, match="mechanism mismatch"):
        conn.receive_data(bytes(raw))
    assert conn.state is State.CLOSED


def test_as_server_octet_must_be_0_or_1():
    raw = bytearray(LIBZMQ_NULL_GREETING)
    raw[32] = 2
    with pytest.raises(ProtocolError, match="as-server"):
        Connection("DEALER", as_server=False).receive_data(bytes(raw))


def test_libzmq_server_sending_as_server_0_is_fine():
    conn = Connection("DEALER", as_server=False)
    conn.receive_data(LIBZMQ_NULL_GREETING)
    assert conn.state is State.HANDSHAKE


@pytest.mark.parametrize("bad", [b"null" + b"\x00" * 16, b"\x00" * 20, b"NU\x00LL" + b"\x00" * 15])
def test_bad_mechanism_names(bad):
    with pytest.raises(ProtocolError):
        decode_mechanism(bad)


def test_mechanism_name_roundtrip():
    assert decode_mechanism(encode_mechanism("CURVE")) == "CURVE"
    with pytest.raises(ValueError):
        encode_mechanism("TOO-LONG-A-MECHANISM-NAME")


def test_greeting_arriving_one_octet_at_a_time():
    conn = Connection("DEALER", as_server=False)
    events = []
    for i in range(64):
        events += conn.receive_data(LIBZMQ_NULL_GREETING[i : i + 1])
    assert [type(e) for e in events] == [GreetingReceived]


def test_major_below_3_in_a_full_greeting_decode_is_refused():
    raw = bytearray(LIBZMQ_NULL_GREETING)
    raw[10] = 2
    with pytest.raises(ProtocolError, match="major version"):
        Greeting.decode(bytes(raw))
