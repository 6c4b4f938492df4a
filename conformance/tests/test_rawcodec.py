"""The raw peer's own codec: its CURVE client and server meet each other, and refuse what is wrong."""

from __future__ import annotations

import pytest
from codec_pairs import pump

from zmtp_conformance import rawcodec
from zmtp_conformance.credentials import (
    CURVE_CLIENT_PUBLIC,
    CURVE_CLIENT_SECRET,
    CURVE_SERVER_PUBLIC,
    CURVE_SERVER_SECRET,
    z85_decode,
)

CLIENT_SECRET, SERVER_SECRET = z85_decode(CURVE_CLIENT_SECRET), z85_decode(CURVE_SERVER_SECRET)
SERVER_PUBLIC = z85_decode(CURVE_SERVER_PUBLIC)


def pair(server_public: bytes = SERVER_PUBLIC) -> tuple[rawcodec.Codec, rawcodec.Codec]:
    client = rawcodec.Codec(
        "DEALER", as_server=False, mechanism=lambda st, i: rawcodec.Curve(st, i, CLIENT_SECRET, server_public)
    )
    server = rawcodec.Codec(
        "ROUTER", as_server=True, mechanism=lambda st, i: rawcodec.CurveServer(st, i, SERVER_SECRET)
    )
    return client, server


def test_curve_client_and_server_shake_hands_and_exchange_boxes():
    client, server = pair()
    pump(client, server)
    assert client.ready and server.ready
    assert (client.peer_socket_type, server.peer_socket_type) == ("ROUTER", "DEALER")
    assert isinstance(server.mech, rawcodec.CurveServer) and server.mech.client == z85_decode(CURVE_CLIENT_PUBLIC)
    client.send_message([b"a", b"bb"])
    server.send_message([b"reply"])
    pump(client, server)
    assert server.messages == [[b"a", b"bb"]] and client.messages == [[b"reply"]]


def test_a_ping_inside_the_box_is_answered_with_a_command_box():
    client, server = pair()
    pump(client, server)
    # The COMMAND flag inside a MESSAGE box is 0x02 (RFC 26); a PONG comes back the same way.
    server.outgoing += server.mech.box(0x02, b"\x04PING\x00\x0aab")
    pump(client, server)
    assert client.messages == [] and server.messages == []
    assert server.mech.peer_nonce > 2  # the PONG's box opened on the server side


def test_a_client_that_knows_another_server_key_is_refused():
    wrong = z85_decode(CURVE_CLIENT_PUBLIC)  # any other key than the server's
    client, server = pair(server_public=wrong)
    with pytest.raises(rawcodec.CodecError, match="HELLO signature box does not open"):
        pump(client, server)


def test_an_initiate_without_the_servers_cookie_is_refused():
    client, server = pair()
    server.receive(client.data_to_send())  # its greeting
    client.receive(server.data_to_send())  # the server's greeting: the client says HELLO
    server.receive(client.data_to_send())  # HELLO: the server says WELCOME
    client.receive(server.data_to_send())  # WELCOME: the client says INITIATE
    initiate = bytearray(client.data_to_send())
    # The cookie starts right after the command name; spoil one octet of it.
    at = initiate.index(b"\x08INITIATE") + 9
    initiate[at] ^= 0xFF
    with pytest.raises(rawcodec.CodecError, match="cookie"):
        server.receive(bytes(initiate))


def test_a_replayed_message_nonce_is_refused():
    client, server = pair()
    pump(client, server)
    client.send_message([b"once"])
    boxed = client.data_to_send()
    server.receive(boxed)
    with pytest.raises(rawcodec.CodecError, match="does not increase"):
        server.receive(boxed)


def plain_pair() -> tuple[rawcodec.Codec, rawcodec.Codec]:
    client = rawcodec.Codec(
        "PUSH", as_server=False, mechanism=lambda st, i: rawcodec.Plain(st, i, b"admin", b"secret")
    )
    server = rawcodec.Codec("PULL", as_server=True, mechanism=rawcodec.PlainServer)
    return client, server


def test_plain_client_and_server_shake_hands():
    client, server = plain_pair()
    pump(client, server)
    assert client.ready and server.ready
    assert isinstance(server.mech, rawcodec.PlainServer) and server.mech.username == b"admin"
    client.send_message([b"m"])
    pump(client, server)
    assert server.messages == [[b"m"]]


@pytest.mark.parametrize(
    "name,body",
    [("HELLO", b"\x05admin\x09secret"), ("HELLO", b""), ("INITIATE", b""), ("READY", b"")],
)
def test_the_plain_server_refuses_a_malformed_or_misplaced_command(name, body):
    _, server = plain_pair()
    server.receive(rawcodec.greeting(3, 1, "PLAIN", 0))
    with pytest.raises(rawcodec.CodecError):
        server.receive(rawcodec.command(name, body))


def test_the_curve_server_refuses_a_hello_whose_padding_is_not_zero():
    client, server = pair()
    server.receive(client.data_to_send())  # the greeting
    client.receive(server.data_to_send())
    hello = bytearray(client.data_to_send())
    hello[2 + 6 + 2 + 10] = 0x01  # frame header, name, version, then inside the 72 octets of padding
    with pytest.raises(rawcodec.CodecError, match="padding"):
        server.receive(bytes(hello))


def test_a_raw_server_role_speaks_the_cells_mechanism():
    from zmtp_conformance.credentials import server_mechanism

    assert server_mechanism("NULL") is None
    assert isinstance(server_mechanism("CURVE")("PULL", b""), rawcodec.CurveServer)
    assert isinstance(server_mechanism("PLAIN")("PULL", b""), rawcodec.PlainServer)
