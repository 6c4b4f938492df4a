"""ProtocolBugs knobs do what their comments say, seen by impl's own conforming side (sans I/O).

The kill matrix (conformance/kill-matrix.yaml) proves the harness catches each knob; these
tests pin down the bytes and behaviour each knob produces, so a knob that silently stops
doing anything is found here first.
"""

from __future__ import annotations

from functools import partial

import pytest

from zmtp import command
from zmtp.bugs import NO_BUGS, ProtocolBugs
from zmtp.connection import Connection, State
from zmtp.errors import AuthenticationFailed, ProtocolError
from zmtp.events import HandshakeComplete, Message, Ping
from zmtp.frame import COMMAND, MORE
from zmtp.greeting import Greeting
from zmtp.keys import parse_key
from zmtp.mechanisms.base import ZapSettings
from zmtp.mechanisms.curve import CurveMechanism
from zmtp.mechanisms.plain import PlainMechanism
from zmtp.zap import ZapResponse

from .helpers import handshake, pump

SERVER_PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
SERVER_SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
CLIENT_SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
ZAP = ZapSettings(domain="test", address="127.0.0.1", identity=b"")


@pytest.mark.parametrize("knob", ["metadata_value_overrun", "metadata_bad_name"])
def test_malformed_ready_is_refused_by_a_conforming_server(knob):
    client = Connection("PUSH", as_server=False, bugs=ProtocolBugs(**{knob: True}))
    server = Connection("PULL", as_server=True)
    with pytest.raises(ProtocolError):
        pump(client, server)


def test_lowercase_names_are_still_understood():
    _, server = handshake("DEALER", "ROUTER", client={"bugs": ProtocolBugs(metadata_names_lowercase=True)})
    assert server.state is State.TRAFFIC and server.peer_socket_type == "DEALER"
    assert list(server.peer_metadata) == ["socket-type", "identity"]


def test_more_flag_on_last_frame_never_ends_the_message():
    client, server = handshake("PUSH", "PULL", client={"bugs": ProtocolBugs(more_flag_on_last_frame=True)})
    client.send_message([b"a", b"b"])
    wire = client.data_to_send()
    assert wire == bytes((MORE, 1)) + b"a" + bytes((MORE, 1)) + b"b"
    assert not [e for e in server.receive_data(wire) if isinstance(e, Message)]


def test_pong_context_reversed():
    client, server = handshake("DEALER", "ROUTER", server={"bugs": ProtocolBugs(pong_context_reversed=True)})
    client.send_ping(0, b"abc")
    events = server.receive_data(client.data_to_send())
    assert [e.context for e in events if isinstance(e, Ping)] == [b"abc"]  # the event keeps what came
    assert server.data_to_send().endswith(command.pong(b"cba")[2:])


def plain_pair(client_bugs=NO_BUGS, server_bugs=NO_BUGS):
    client = Connection(
        "PUSH",
        as_server=False,
        bugs=client_bugs,
        mechanism=partial(PlainMechanism, username=b"admin", password=b"secret"),
    )
    server = Connection("PULL", as_server=True, bugs=server_bugs, zap=ZAP, mechanism=PlainMechanism)
    return client, server


def test_plain_hello_trailing_octet_is_refused():
    client, server = plain_pair(client_bugs=ProtocolBugs(plain_hello_trailing_octet=True))
    with pytest.raises(ProtocolError, match="after the password"):
        pump(client, server)


def test_plain_welcome_with_body_is_refused():
    client, server = plain_pair(server_bugs=ProtocolBugs(plain_welcome_with_body=True))
    pump(client, server)
    server.authenticate(ZapResponse(b"1", 200, "OK", "admin"))
    with pytest.raises(ProtocolError, match="WELCOME carries 1 octets"):
        pump(client, server)


def test_plain_initiate_early_comes_before_welcome():
    client, _ = plain_pair(client_bugs=ProtocolBugs(plain_initiate_early=True))
    client.receive_data(Greeting(mechanism="PLAIN", as_server=True).encode())
    wire = client.data_to_send()
    assert wire.index(b"\x05HELLO") < wire.index(b"\x08INITIATE")


@pytest.mark.parametrize(
    "bugs, status, error",
    [
        (ProtocolBugs(), 400, True),
        (ProtocolBugs(), 300, False),
        (ProtocolBugs(zap_no_error_on_refusal=True), 400, False),
        (ProtocolBugs(zap_no_error_on_refusal=True), 500, False),
        (ProtocolBugs(zap_error_on_temporary=True), 300, True),
    ],
)
def test_zap_refusal_error_command(bugs, status, error):
    client, server = plain_pair(server_bugs=bugs)
    pump(client, server)
    with pytest.raises(AuthenticationFailed):
        server.authenticate(ZapResponse(b"1", status, "no", ""))
    assert (b"\x05ERROR" in server.data_to_send()) is error


def test_zap_ignore_refusal_completes_the_handshake():
    client, server = plain_pair(server_bugs=ProtocolBugs(zap_ignore_refusal=True))
    pump(client, server)
    events = server.authenticate(ZapResponse(b"1", 400, "no", ""))
    events += pump(client, server)[1]
    assert any(isinstance(e, HandshakeComplete) for e in events)


def curve_pair(client_bugs=NO_BUGS, server_bugs=NO_BUGS):
    client = Connection(
        "PUSH",
        as_server=False,
        bugs=client_bugs,
        mechanism=partial(CurveMechanism, secret_key=parse_key(CLIENT_SECRET), server_key=parse_key(SERVER_PUBLIC)),
    )
    server = Connection(
        "PULL", as_server=True, bugs=server_bugs, mechanism=partial(CurveMechanism, secret_key=parse_key(SERVER_SECRET))
    )
    return client, server


@pytest.mark.parametrize("knob", ["curve_vouch_wrong_key", "curve_hello_padding_70"])
def test_curve_client_knobs_are_refused_by_a_conforming_server(knob):
    client, server = curve_pair(client_bugs=ProtocolBugs(**{knob: True}))
    with pytest.raises(ProtocolError):
        pump(client, server)


def test_curve_message_command_frame_is_the_rfc_form_and_impl_reads_it():
    client, server = curve_pair(client_bugs=ProtocolBugs(curve_message_command_frame=True))
    pump(client, server)
    client.send_message([b"one", b"two"])
    wire = client.data_to_send()
    assert wire[0] == COMMAND and wire[2:10] == b"\x07MESSAGE"
    assert [e.frames for e in server.receive_data(wire) if isinstance(e, Message)] == [[b"one", b"two"]]
