"""Commands, byte for byte from RFC 23 / RFC 37 and the libzmq wire (zmtp-requirements §2)."""

import pytest

from zmtp import command
from zmtp.errors import ProtocolError
from zmtp.socket_type import SENDS_IDENTITY, SocketType

# Total frame sizes of libzmq's READY with an empty Identity (zmtp-requirements §2).
READY_SIZES = {
    "REQ": 40,
    "DEALER": 43,
    "ROUTER": 43,
    "REP": 27,
    "PUB": 27,
    "SUB": 27,
    "XPUB": 28,
    "XSUB": 28,
    "PUSH": 28,
    "PULL": 28,
    "PAIR": 28,
}


def ready_for(t: SocketType) -> bytes:
    props = [("Socket-Type", t.wire_name)]
    if t in SENDS_IDENTITY:
        props.append(("Identity", b""))
    return command.ready(props)


@pytest.mark.parametrize("name", sorted(READY_SIZES))
def test_ready_for_every_socket_type(name):
    raw = ready_for(SocketType[name])
    assert len(raw) == READY_SIZES[name]
    assert raw[0] == 0x04 and raw[1] == len(raw) - 2
    assert raw[2:8] == b"\x05READY"
    assert raw[8:20] == b"\x0bSocket-Type"
    assert raw[20:24] == len(name).to_bytes(4, "big")


def test_dealer_ready_exact_bytes():
    assert ready_for(SocketType.DEALER) == (
        b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00"
    )


def test_error_exact_bytes():
    assert command.error("400") == b"\x04\x0a\x05ERROR\x03400"


def test_error_reason_parse_and_truncation():
    assert command.parse_error(b"\x03400") == "400"
    with pytest.raises(ProtocolError):
        command.parse_error(b"\x05ab")
    with pytest.raises(ProtocolError):
        command.parse_error(b"")


def test_subscribe_and_cancel_commands():
    assert command.subscribe(b"A") == b"\x04\x0b\x09SUBSCRIBEA"
    assert command.cancel(b"A") == b"\x04\x08\x06CANCELA"


def test_ping_pong_bytes():
    assert command.ping(0, b"LOL") == b"\x04\x0a\x04PING\x00\x00LOL"
    assert command.pong(b"LOL") == b"\x04\x08\x04PONGLOL"


def test_ping_context_is_cut_to_16_for_the_pong():
    # libzmq test_heartbeats: a 65-octet PING body gets a 21-octet PONG body.
    body = b"\x04PING" + b"\x00\x00" + b"LOL" + b"z" * 55
    assert len(body) == 65
    _name, data = command.parse_command(body)
    _ttl, ctx = command.parse_ping(data)
    assert command.pong(ctx) == b"\x04\x15\x04PONG" + b"LOL" + b"z" * 13


def test_ping_limits():
    with pytest.raises(ValueError):
        command.ping(0x10000)
    with pytest.raises(ValueError):
        command.ping(0, b"x" * 17)
    with pytest.raises(ProtocolError):
        command.parse_ping(b"\x00")


@pytest.mark.parametrize(
    "body,match",
    [(b"", "empty"), (b"\x00", "length is 0"), (b"\x09SUB", "truncated"), (b"\x04PI1G", "letters")],
)
def test_malformed_command_names(body, match):
    with pytest.raises(ProtocolError, match=match):
        command.parse_command(body)
