"""The sans-I/O connection: handshakes, traffic, downgrades and refusals."""

import pytest

from zmtp import command
from zmtp.bugs import ProtocolBugs
from zmtp.connection import Connection, SocketTypeMismatch, State
from zmtp.errors import InvalidState, PeerRefused, ProtocolError
from zmtp.events import Cancel, GreetingReceived, HandshakeComplete, Message, Ping, Pong, Subscribe, UnknownCommand
from zmtp.frame import encode_frame, encode_message_bytes
from zmtp.greeting import Greeting

from .helpers import BOTH_ORDERS, handshake, pump


def test_null_handshake_dealer_router():
    client = Connection("DEALER", as_server=False, identity=b"alice", metadata={"X-App": b"test"})
    server = Connection("ROUTER", as_server=True)
    ec, es = pump(client, server)
    assert [type(e) for e in ec] == [GreetingReceived, HandshakeComplete]
    assert [type(e) for e in es] == [GreetingReceived, HandshakeComplete]
    done = es[1]
    assert done.version == (3, 1)
    assert done.peer_socket_type == "DEALER"
    assert done.peer_identity == b"alice"
    assert done.metadata["x-app"] == b"test"
    assert client.state is State.TRAFFIC and server.state is State.TRAFFIC


def test_server_waits_for_client_ready_in_3_1():
    client = Connection("REQ", as_server=False)
    server = Connection("REP", as_server=True)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    out = server.data_to_send()
    assert b"READY" not in out  # only the rest of the greeting so far
    client.receive_data(out)
    client_ready = client.data_to_send()
    assert b"READY" in client_ready
    server.receive_data(client_ready)
    assert b"READY" in server.data_to_send()


def test_messages_flow_both_ways():
    client, server = handshake("PUSH", "PULL")
    client.send_message([b"a", b"b" * 300, b""])
    _, es = pump(client, server)
    assert es == [Message([b"a", b"b" * 300, b""])]


def test_socket_type_mismatch_gets_error_from_server_then_close():
    client = Connection("REQ", as_server=False)
    server = Connection("PUB", as_server=True)
    with pytest.raises(SocketTypeMismatch):
        pump(client, server)
    assert server.state is State.CLOSED
    # The server's last words are an ERROR command, which the client takes as fatal.
    with pytest.raises(PeerRefused, match="Invalid-socket-type"):
        client.receive_data(server.data_to_send())


def test_client_closes_without_error_on_bad_server_type():
    client = Connection("SUB", as_server=False)
    server = Connection("PULL", as_server=True, bugs=ProtocolBugs(skip_socket_type_check=True))
    with pytest.raises(SocketTypeMismatch):
        pump(client, server)
    assert b"ERROR" not in client.data_to_send()


@pytest.mark.parametrize("client,server", BOTH_ORDERS)
def test_every_valid_pair_completes(client, server):
    c, s = handshake(client, server)
    assert c.state is State.TRAFFIC and s.state is State.TRAFFIC


def test_skip_socket_type_check_bug_lets_a_bad_pair_through():
    client = Connection("REQ", as_server=False)
    server = Connection("PUB", as_server=True, bugs=ProtocolBugs(skip_socket_type_check=True))
    with pytest.raises(SocketTypeMismatch):  # the honest client still refuses
        pump(client, server)
    assert server.state is State.TRAFFIC


def test_property_names_are_case_insensitive_on_receive():
    _client, _server = handshake("DEALER", "ROUTER")
    weird = Connection("ROUTER", as_server=True)
    weird.receive_data(Greeting().encode())
    weird.data_to_send()
    events = weird.receive_data(command.ready([("socket-TYPE", b"DEALER"), ("IDENTITY", b"bob")]))
    assert events[-1].peer_identity == b"bob"
    assert events[-1].peer_socket_type == "DEALER"


def test_ready_without_socket_type_is_accepted():
    server = Connection("ROUTER", as_server=True)
    server.receive_data(Greeting().encode())
    events = server.receive_data(command.ready([]))
    assert isinstance(events[-1], HandshakeComplete)


def test_message_before_ready_is_a_protocol_error():
    server = Connection("PULL", as_server=True)
    server.receive_data(Greeting().encode())
    with pytest.raises(ProtocolError, match="during the NULL handshake"):
        server.receive_data(encode_frame(b"sneaky"))


def test_unexpected_command_in_handshake():
    server = Connection("PULL", as_server=True)
    server.receive_data(Greeting().encode())
    with pytest.raises(ProtocolError, match="expected READY"):
        server.receive_data(command.ping())


def test_error_during_handshake_is_fatal():
    client = Connection("PUSH", as_server=False)
    client.receive_data(Greeting().encode())
    with pytest.raises(PeerRefused, match="400"):
        client.receive_data(command.error("400"))


def test_ping_is_answered_with_echoed_context():
    client, server = handshake("DEALER", "ROUTER")
    client.send_ping(50, b"ctx")
    ec, es = pump(client, server)
    assert es == [Ping(50, b"ctx")]
    assert ec == [Pong(b"ctx")]


def test_empty_pong_bug():
    client, server = handshake("DEALER", "ROUTER", server={"bugs": ProtocolBugs(empty_pong=True)})
    client.send_ping(0, b"ctx")
    ec, _ = pump(client, server)
    assert ec == [Pong(b"")]


def test_ping_between_frames_of_a_message_does_not_break_it():
    _client, server = handshake("PUSH", "PULL")
    raw = encode_frame(b"a", more=True) + command.ping(0, b"x") + encode_frame(b"b")
    events = server.receive_data(raw)
    assert events == [Ping(0, b"x"), Message([b"a", b"b"])]


def test_subscriptions_use_commands_with_3_1():
    sub, pub = handshake("SUB", "PUB")
    sub.send_subscribe(b"A")
    raw = sub.data_to_send()
    assert raw == b"\x04\x0b\x09SUBSCRIBEA"
    assert pub.receive_data(raw) == [Subscribe(b"A")]
    sub.send_cancel(b"A")
    assert pub.receive_data(sub.data_to_send()) == [Cancel(b"A")]


def test_subscriptions_use_frames_with_3_0():
    sub = Connection("SUB", as_server=False)
    pub = Connection("PUB", as_server=True, bugs=ProtocolBugs(greeting_minor=0))
    pump(sub, pub)
    assert sub.version == (3, 0)
    sub.send_subscribe(b"A")
    raw = sub.data_to_send()
    assert raw == b"\x00\x02\x01A"
    assert pub.receive_data(raw) == [Subscribe(b"A", legacy=True)]
    sub.send_cancel(b"A")
    assert pub.receive_data(sub.data_to_send()) == [Cancel(b"A", legacy=True)]


def test_publisher_accepts_both_forms_on_3_1():
    _sub, pub = handshake("XSUB", "XPUB")
    assert pub.receive_data(b"\x00\x02\x01A") == [Subscribe(b"A", legacy=True)]
    assert pub.receive_data(command.subscribe(b"B")) == [Subscribe(b"B")]


def test_unknown_command_after_handshake_is_reported_not_fatal():
    _client, server = handshake("PUSH", "PULL")
    events = server.receive_data(encode_frame(b"\x06FOOBARworld", command=True))
    assert events == [UnknownCommand(b"FOOBAR", b"world")]
    assert server.state is State.TRAFFIC


def test_handshake_command_after_handshake_is_an_error():
    _client, server = handshake("PUSH", "PULL")
    with pytest.raises(ProtocolError, match="HELLO command after"):
        server.receive_data(encode_frame(b"\x05HELLOworld", command=True))


def test_ready_after_handshake_is_an_error():
    _client, server = handshake("PUSH", "PULL")
    with pytest.raises(ProtocolError, match="READY command after"):
        server.receive_data(command.ready([("Socket-Type", b"PUSH")]))


def test_more_flag_on_command_is_an_error():
    _client, server = handshake("PUSH", "PULL")
    with pytest.raises(ProtocolError, match="MORE"):
        server.receive_data(b"\x05\x06\x04PING\x00\x00")


def test_send_before_handshake_is_invalid_state():
    conn = Connection("PUSH", as_server=False)
    with pytest.raises(InvalidState):
        conn.send_message([b"x"])


def test_max_msg_size_from_the_header():
    _client, server = handshake("PUSH", "PULL", server={"max_msg_size": 10})
    with pytest.raises(ProtocolError, match="max_msg_size"):
        server.receive_data(b"\x02" + (1 << 50).to_bytes(8, "big"))


def test_garbage_instead_of_greeting():
    server = Connection("PULL", as_server=True, allow_legacy=False)
    with pytest.raises(ProtocolError):
        server.receive_data(b"GET / HTTP/1.1\r\n\r\n")


# -- downgrades (RFC 37 "Backwards Interoperability") -------------------------


def test_zmtp_2_0_peer_with_null():
    server = Connection("PULL", as_server=True)
    server.data_to_send()
    # A ZMTP/2.0 PUSH (type 8) with identity "id", then a message.
    events = server.receive_data(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x01\x08" + b"\x00\x02id" + b"\x00\x02hi")
    assert [type(e) for e in events] == [GreetingReceived, HandshakeComplete, Message]
    assert events[1].version == (2, 0) and events[1].peer_identity == b"id"
    assert events[2].frames == [b"hi"]
    out = server.data_to_send()
    assert out == b"\x03" + b"\x07" + b"\x00\x00"  # major, our type (PULL=7), empty identity


def test_zmtp_2_0_bad_type_pair():
    server = Connection("PULL", as_server=True)
    with pytest.raises(SocketTypeMismatch):
        server.receive_data(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x01\x01" + b"\x00\x00")


def test_zmtp_1_0_peer_with_null():
    server = Connection("PULL", as_server=True, identity=b"")
    first = server.data_to_send()
    assert first == b"\xff" + (1).to_bytes(8, "big") + b"\x7f"
    # ZMTP/1.0: anonymous identity frame (length 1, flags 0), then a message "hi".
    events = server.receive_data(b"\x01\x00" + b"\x03\x00hi")
    assert [type(e) for e in events] == [GreetingReceived, HandshakeComplete, Message]
    assert events[1].version == (1, 0)
    assert events[2].frames == [b"hi"]
    server_send = server.data_to_send()
    assert server_send == b""  # identity body is empty
    server.send_message([b"yo", b"!"])
    assert server.data_to_send() == b"\x03\x01yo\x02\x00!"


def test_legacy_refused_with_zap_domain():
    server = Connection("PULL", as_server=True, zap_domain="global")
    with pytest.raises(ProtocolError, match="ZAP domain"):
        server.receive_data(b"\x01\x00")


def test_legacy_refused_when_disabled():
    server = Connection("PULL", as_server=True, allow_legacy=False)
    with pytest.raises(ProtocolError, match="not allowed"):
        server.receive_data(b"\xff" + b"\x00" * 8 + b"\x7f\x01\x08")


def test_legacy_refused_as_soon_as_the_version_octet_shows_it():
    # Found by the fuzzer: with 11 octets (signature and version 0) impl waited for a 12th before
    # refusing a ZMTP 2.0 peer under a ZAP domain, where RFC 23 says to close immediately.
    server = Connection("PULL", as_server=True, zap_domain="global")
    with pytest.raises(ProtocolError, match="ZAP domain"):
        server.receive_data(b"\xff" + b"\x00" * 8 + b"\x7f\x00")


def test_vanilla_1_0_message_does_not_reach_a_secure_socket():
    # libzmq test_security_*: "01 00" + "08 00 sneaky\0" must never be delivered.
    server = Connection("PULL", as_server=True, zap_domain="test")
    with pytest.raises(ProtocolError):
        server.receive_data(b"\x01\x00\x08\x00sneaky\x00")


def test_long_flag_bug_is_decodable_but_visible():
    client, server = handshake("PUSH", "PULL", client={"bugs": ProtocolBugs(long_flag_on_short_frames=True)})
    client.send_message([b"x"])
    raw = client.data_to_send()
    assert raw == b"\x02" + (1).to_bytes(8, "big") + b"x"
    assert server.receive_data(raw) == [Message([b"x"])]


def test_reserved_flag_bug_is_refused_by_an_honest_peer():
    client, server = handshake("PUSH", "PULL", client={"bugs": ProtocolBugs(reserved_flag_bits=True)})
    client.send_message([b"x"])
    with pytest.raises(ProtocolError, match="reserved"):
        server.receive_data(client.data_to_send())


def test_wrong_ready_name_bug_is_refused():
    client = Connection("PUSH", as_server=False, bugs=ProtocolBugs(ready_command_name=b"READX"))
    server = Connection("PULL", as_server=True)
    with pytest.raises(ProtocolError, match="READX"):
        pump(client, server)


def test_messages_in_same_chunk_as_ready_are_delivered():
    client = Connection("PUSH", as_server=False)
    server = Connection("PULL", as_server=True)
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    hello = client.data_to_send()  # client READY
    events = server.receive_data(hello + encode_message_bytes([b"early"]))
    assert isinstance(events[-1], Message)
