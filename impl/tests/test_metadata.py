"""Metadata properties (RFC 37 "Connection Metadata")."""

import pytest

from zmtp.errors import ProtocolError
from zmtp.metadata import Metadata, decode_properties, encode_properties


def test_roundtrip_and_case_insensitive_lookup():
    raw = encode_properties([("Socket-Type", b"REQ"), ("X-Hello", b"world"), ("Identity", b"")])
    md = decode_properties(raw)
    assert md["socket-type"] == b"REQ"
    assert md["SOCKET-TYPE"] == b"REQ"
    assert "x-hello" in md and md["X-HELLO"] == b"world"
    assert list(md) == ["Socket-Type", "X-Hello", "Identity"]
    assert md == {"socket-type": b"REQ", "x-hello": b"world", "identity": b""}


def test_zero_length_name_is_refused():
    with pytest.raises(ProtocolError, match="zero-length"):
        decode_properties(b"\x00\x00\x00\x00\x00")


@pytest.mark.parametrize(
    "raw",
    [
        b"\x0bSocket",  # name cut short
        b"\x03abc\x00\x00",  # value size cut short
        b"\x03abc\x00\x00\x00\x05ab",  # value cut short
    ],
)
def test_truncated_property(raw):
    with pytest.raises(ProtocolError, match="truncated"):
        decode_properties(raw)


def test_bad_name_characters():
    with pytest.raises(ProtocolError, match="characters"):
        decode_properties(b"\x03a b\x00\x00\x00\x00")


def test_value_size_over_int32_max():
    with pytest.raises(ProtocolError, match="2\\^31"):
        decode_properties(b"\x01a\x80\x00\x00\x00")


def test_encoder_refuses_bad_names():
    with pytest.raises(ValueError):
        encode_properties([("", b"")])
    with pytest.raises(ValueError):
        encode_properties([("has space", b"")])


def test_empty_metadata():
    assert decode_properties(b"") == Metadata()
