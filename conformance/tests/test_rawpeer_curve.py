"""The raw peer's CURVE capabilities for RFC 26 scenarios: MESSAGE in a command frame, spoilt handshake
commands, lower-case metadata names and fresh values compared across connections.

Each runs the raw codec against itself (no implementation involved) and has a case that must fail.
"""

from __future__ import annotations

import asyncio

import pytest
from codec_pairs import pump, raw_pair
from nacl.public import PrivateKey
from scenario_samples import GOOD, write

from zmtp_conformance import rawcodec, vocabulary
from zmtp_conformance.credentials import CURVE_CLIENT_SECRET, CURVE_SERVER_PUBLIC, CURVE_SERVER_SECRET, z85_decode
from zmtp_conformance.rawpeer import RawFailure, RawPeer
from zmtp_conformance.scenario import ScenarioError, load_file
from zmtp_conformance.trace import Transcript

CLIENT_SECRET, SERVER_SECRET = z85_decode(CURVE_CLIENT_SECRET), z85_decode(CURVE_SERVER_SECRET)
SERVER_PUBLIC = z85_decode(CURVE_SERVER_PUBLIC)


def client(**kw) -> rawcodec.Codec:
    return rawcodec.Codec(
        "PUSH", as_server=False, mechanism=lambda st, i: rawcodec.Curve(st, i, CLIENT_SECRET, SERVER_PUBLIC), **kw
    )


def server(**kw) -> rawcodec.Codec:
    return rawcodec.Codec(
        "PULL", as_server=True, mechanism=lambda st, i: rawcodec.CurveServer(st, i, SERVER_SECRET), **kw
    )


def test_message_in_a_command_frame_sets_command_outside_and_more_only_inside():
    c, s = client(), server()
    pump(c, s)
    c.send_message([b"a", b"bb"], rfc_form=True)
    wire = c.data_to_send()
    frames = rawcodec.FrameReader().feed(wire)
    assert [f.flags for f in frames] == [rawcodec.COMMAND, rawcodec.COMMAND]
    assert all(f.body.startswith(b"\x07MESSAGE") for f in frames)
    s.receive(wire)
    assert s.messages == [[b"a", b"bb"]]  # MORE came through inside the first box


def test_the_default_form_is_a_data_frame_with_more_outside():
    c, s = client(), server()
    pump(c, s)
    c.send_message([b"a", b"bb"])
    assert [f.flags for f in rawcodec.FrameReader().feed(c.data_to_send())] == [rawcodec.MORE, 0]


def test_message_in_a_command_frame_is_refused_outside_curve():
    c = rawcodec.Codec("PUSH", as_server=False)
    with pytest.raises(rawcodec.CodecError, match="CURVE's; this connection is NULL"):
        c.send_message([b"x"], rfc_form=True)


@pytest.mark.parametrize(
    ("corrupt", "refusal"),
    [
        ("welcome_box", "WELCOME box does not open"),
        ("welcome_size", "WELCOME of 167 octets"),
        ("welcome_zero_key", "server transient key no shared key can be made with: 0{64}"),
        ("ready_box", "READY box does not open"),
        ("metadata_truncated_size", "announces|does not fit"),
        ("metadata_zero_name", "name of 0 octets"),
    ],
)
def test_a_spoilt_server_command_is_refused_by_the_raw_client(corrupt, refusal):
    c, s = client(), server(corrupt=corrupt)
    with pytest.raises(rawcodec.CodecError, match=refusal):
        pump(c, s)
    assert s.mech.corrupted and not c.ready


@pytest.mark.parametrize(
    ("corrupt", "refusal"),
    [
        ("vouch", "vouch box does not open"),
        ("metadata_truncated_size", "announces|does not fit"),
        ("metadata_zero_name", "name of 0 octets"),
    ],
)
def test_a_spoilt_client_command_is_refused_by_the_raw_server(corrupt, refusal):
    c, s = client(corrupt=corrupt), server()
    with pytest.raises(rawcodec.CodecError, match=refusal):
        pump(c, s)
    assert c.mech.corrupted and not s.ready


def test_without_corruption_nothing_is_spoilt():
    c, s = client(), server()
    pump(c, s)
    assert c.ready and s.ready and not c.mech.corrupted and not s.mech.corrupted


def test_a_side_cannot_spoil_what_it_does_not_send():
    with pytest.raises(rawcodec.CodecError, match="CURVE client cannot spoil 'welcome_box'"):
        client(corrupt="welcome_box")
    with pytest.raises(rawcodec.CodecError, match="CURVE server cannot spoil 'vouch'"):
        server(corrupt="vouch")


def test_the_vocabulary_names_every_corruption_the_codec_knows():
    schema = vocabulary.ACTIONS["handshake"].arg["properties"]["corrupt"]["enum"]
    known = {*rawcodec.CURVE_CLIENT_CORRUPTIONS, *rawcodec.CURVE_SERVER_CORRUPTIONS, *rawcodec.METADATA_CORRUPTIONS}
    assert set(schema) == known


def test_lowercase_names_reach_the_server_and_still_match():
    c, s = client(lowercase_names=True), server()
    initiate_seen: list[bytes] = []
    original = s.mech.on_command

    def spy(name: str, data: bytes) -> bytes:
        if name == "INITIATE":
            initiate_seen.append(data)
        return original(name, data)

    s.mech.on_command = spy  # type: ignore[method-assign]
    pump(c, s)
    assert s.ready and s.peer_socket_type == "PUSH"
    assert c.mech.metadata()[0][0] == "socket-type"
    assert initiate_seen  # the server opened an INITIATE whose metadata it read without regard to case


def test_a_short_ready_is_refused():
    c, s = client(), server()
    s.receive(c.data_to_send())
    c.receive(s.data_to_send())
    s.receive(c.data_to_send())  # HELLO
    c.receive(s.data_to_send())  # WELCOME: the client sends INITIATE
    with pytest.raises(rawcodec.CodecError, match="READY of 29 octets"):
        c.receive(rawcodec.command("READY", bytes(23)))


def test_fresh_values_are_recorded_on_both_sides():
    c, s = client(), server()
    pump(c, s)
    assert set(c.mech.fresh) == {"server transient key", "WELCOME nonce", "cookie"}
    assert set(s.mech.fresh) == {"client transient key", "vouch nonce"}
    assert c.mech.fresh["server transient key"] == bytes(s.mech.transient.public_key)
    assert s.mech.fresh["client transient key"] == bytes(c.mech.transient.public_key)


def _peer_with(fresh: dict[str, bytes], name: str) -> RawPeer:
    peer = RawPeer(name, Transcript())
    peer.conn = client()
    peer.conn.mech.fresh = dict(fresh)
    return peer


def test_check_distinct_passes_when_every_value_differs():
    a = _peer_with({"cookie": b"1", "WELCOME nonce": b"n1"}, "first")
    b = _peer_with({"cookie": b"2", "WELCOME nonce": b"n2"}, "second")
    b.check_distinct(a)


def test_check_distinct_names_the_value_that_repeats():
    a = _peer_with({"cookie": b"1", "server transient key": b"k"}, "first")
    b = _peer_with({"cookie": b"2", "server transient key": b"k"}, "second")
    with pytest.raises(RawFailure, match="server transient key equals first's"):
        b.check_distinct(a)


def test_check_distinct_needs_values_to_compare():
    a = _peer_with({}, "first")
    b = _peer_with({"cookie": b"2"}, "second")
    with pytest.raises(RawFailure, match="no handshake values to compare"):
        b.check_distinct(a)


def test_a_spoilt_handshake_step_ends_once_the_command_is_sent():
    """Over loopback: the raw server sends a broken WELCOME and its handshake returns; the raw client refuses it."""

    async def go() -> None:
        cli, srv, listener = await raw_pair()
        mech_c = lambda st, i: rawcodec.Curve(st, i, CLIENT_SECRET, SERVER_PUBLIC)  # noqa: E731
        mech_s = lambda st, i: rawcodec.CurveServer(st, i, SERVER_SECRET)  # noqa: E731
        results = await asyncio.gather(
            cli.handshake("PUSH", as_server=False, mechanism=mech_c, timeout=2),
            srv.handshake("PULL", as_server=True, mechanism=mech_s, corrupt="welcome_box", timeout=2),
            return_exceptions=True,
        )
        assert isinstance(results[0], RawFailure) and "WELCOME box does not open" in str(results[0])
        assert results[1] is None and srv.conn is not None and srv.conn.mech.corrupted
        cli.close()
        srv.close()
        listener.close()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_curve_message_on_a_peer_role_is_a_load_error(tmp_path):
    text = GOOD.replace("  - client.send: [hi]", "  - client.send: {message: [hi], curve_message: command}")
    assert text != GOOD
    with pytest.raises(ScenarioError, match="curve_message is for raw roles"):
        load_file(write(tmp_path, text))


def test_distinct_from_must_name_another_raw_role(tmp_path):
    text = GOOD.replace("client: {side: client, type: PUSH}", "client: {side: client, raw: true}").replace(
        "  - client.send: [hi]", "  - client.handshake: {type: PUSH, distinct_from: server}"
    )
    assert text != GOOD
    with pytest.raises(ScenarioError, match="'server' is not another raw role"):
        load_file(write(tmp_path, text))


def test_a_replayed_initiate_is_the_earlier_one_verbatim_and_a_fresh_server_refuses_it():
    first, first_server = client(), server()
    pump(first, first_server)
    assert isinstance(first.mech, rawcodec.Curve) and b"\x08INITIATE" in first.mech.sent_initiate[:20]
    replay, second_server = client(), server()
    replay.mech.replay_initiate = first.mech.sent_initiate  # type: ignore[attr-defined]
    seen: list[bytes] = []
    original = second_server.receive

    def spy(data: bytes) -> None:
        seen.append(data)
        original(data)

    second_server.receive = spy  # type: ignore[method-assign]
    with pytest.raises(rawcodec.CodecError, match="cookie this server sent"):
        pump(replay, second_server)
    assert replay.mech.corrupted and first.mech.sent_initiate in b"".join(seen)


def test_stop_after_ends_the_handshake_once_initiate_is_sent_and_leaves_the_answer_raw():
    async def go() -> None:
        cli, srv, listener = await raw_pair()
        other = PrivateKey.generate()  # a client key of nobody's allow list
        mech_c = lambda st, i: rawcodec.Curve(st, i, bytes(other), SERVER_PUBLIC)  # noqa: E731
        mech_s = lambda st, i: rawcodec.CurveServer(st, i, SERVER_SECRET)  # noqa: E731
        await asyncio.gather(
            cli.handshake("PUSH", as_server=False, mechanism=mech_c, stop_after="INITIATE", timeout=2),
            srv.handshake("PULL", as_server=True, mechanism=mech_s, timeout=2),
        )
        assert cli.conn is not None and cli.conn.stopped and not cli.conn.ready
        assert srv.conn is not None and srv.conn.mech.client == bytes(other.public_key)
        await cli.expect({"command": "READY"})  # the server's answer, read raw: the codec took none of it
        with pytest.raises(RawFailure, match="expected a ERROR command"):
            await srv.write(rawcodec.command("READY"))
            await cli.expect({"command": "ERROR"})
        cli.close()
        srv.close()
        listener.close()

    asyncio.run(asyncio.wait_for(go(), 10))


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (b"\x05ERROR\x03400", None),
        (b"\x05ERROR\x00", None),
        (b"\x05ERROR", "ERROR of 6 octets; RFC 26 makes it 7 or more"),
        (b"\x05ERROR\x05400", "announces 5 octets, 3 follow"),
        (b"\x05ERROR\x02\x00\x01", "not printable ASCII"),
    ],
)
def test_error_bodies_are_held_to_the_grammar(body, refusal):
    if refusal is None:
        assert rawcodec.parse_error(body) == body[7:]
        return
    with pytest.raises(rawcodec.CodecError, match=refusal):
        rawcodec.parse_error(body)


def test_expect_raw_error_refuses_a_malformed_error():
    async def go() -> None:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(rawcodec.frame(b"\x05ERROR\x05400", rawcodec.COMMAND))
            await writer.drain()
            await asyncio.sleep(2)
            writer.close()

        listener = await asyncio.start_server(script, "127.0.0.1", 0)
        cli = RawPeer("client", Transcript())
        await cli.connect(f"tcp://127.0.0.1:{listener.sockets[0].getsockname()[1]}")
        with pytest.raises(RawFailure, match="malformed ERROR: ERROR reason announces 5 octets"):
            await cli.expect({"command": "ERROR"})
        cli.close()
        listener.close()

    asyncio.run(asyncio.wait_for(go(), 10))


def test_a_refusing_raw_server_answers_initiate_with_error_and_stops():
    c, s = client(), server(refuse=b"400")
    with pytest.raises(rawcodec.CodecError, match="refused the handshake with ERROR b'400'"):
        pump(c, s)
    assert s.mech.corrupted and not s.ready and not c.ready


def test_only_a_raw_curve_server_refuses():
    with pytest.raises(rawcodec.CodecError, match="only a raw CURVE server refuses"):
        client(refuse=b"400")
    with pytest.raises(rawcodec.CodecError, match="RFC 26 allows 255"):
        server(refuse=b"x" * 256)


@pytest.mark.parametrize("again", [False, True])
def test_expect_no_connection_fails_once_the_client_comes_back(again):
    async def go() -> None:
        peer = RawPeer("server", Transcript())
        peer.accepted = asyncio.Event()
        if again:
            asyncio.get_running_loop().call_later(0.05, peer.connected_again)
            with pytest.raises(RawFailure, match="the client connected again"):
                await peer.expect_no_connection(2)
        else:
            await peer.expect_no_connection(0.1)
        client_role = RawPeer("client", Transcript())
        with pytest.raises(RawFailure, match="for a raw server role"):
            await client_role.expect_no_connection(0.1)

    asyncio.run(asyncio.wait_for(go(), 10))
