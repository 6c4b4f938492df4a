"""CURVE (RFC 25/26), keys (RFC 32), against PyNaCl box by box and against libzmq in both roles."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import Box, PrivateKey, PublicKey

import zmtp
from zmtp import z85
from zmtp.bugs import NO_BUGS, ProtocolBugs
from zmtp.connection import Connection, State
from zmtp.errors import ProtocolError
from zmtp.events import HandshakeComplete, Message
from zmtp.keys import CurveKeyPair, parse_key
from zmtp.mechanisms.base import ZapSettings
from zmtp.mechanisms.curve import CookieKeys, CurveMechanism

from .helpers import pump

T = 5.0
# libzmq's test keys (doc/zmq_curve.adoc)
CLIENT_PUBLIC = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
CLIENT_SECRET = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
SERVER_PUBLIC = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
SERVER_SECRET = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"


# -- Z85 and keys ---------------------------------------------------------------


def test_z85_rfc32_vectors():
    assert z85.encode(bytes.fromhex("864FD26FB559F75B")) == "HelloWorld"
    assert z85.decode("HelloWorld") == bytes.fromhex("864FD26FB559F75B")
    key = bytes.fromhex("8E0BDD697628B91D8F245587EE95C5B04D48963F79259877B49CD9063AEAD3B7")
    assert z85.encode(key) == SERVER_SECRET
    with pytest.raises(ValueError, match="groups of 4"):
        z85.encode(b"abc")
    with pytest.raises(ValueError, match="not in the Z85 alphabet"):
        z85.decode('Hello"orld')


def test_libzmq_test_keys_reproduce():
    client = CurveKeyPair.from_secret(CLIENT_SECRET)
    server = CurveKeyPair.from_secret(SERVER_SECRET)
    assert client.public_z85 == CLIENT_PUBLIC and server.public_z85 == SERVER_PUBLIC
    assert client.public_hex.upper() == "BB88471D65E2659B30C55A5321CEBB5AAB2B70A398645C26DCA2B2FCB43FC518"
    assert "secret" not in repr(client).lower().replace("secret=...", "")


def test_key_forms_and_errors():
    pair = CurveKeyPair.generate()
    assert parse_key(pair.public_z85) == parse_key(pair.public_hex) == pair.public
    with pytest.raises(ValueError, match="40 Z85 characters or 64 hex digits"):
        parse_key("short")
    with pytest.raises(ValueError, match="not hex"):
        parse_key("g" * 64)
    with pytest.raises(ValueError, match="does not belong"):
        CurveKeyPair(CurveKeyPair.generate().public, pair.secret)


def test_zcert_roundtrip_and_public_only(tmp_path):
    pair = CurveKeyPair.generate()
    pair.save_zcert(tmp_path / "server.key", {"name": "test"})
    text = (tmp_path / "server.key").read_text()
    assert f'public-key = "{pair.public_z85}"' in text and "secret-key" not in text
    assert (tmp_path / "server.key_secret").stat().st_mode & 0o777 == 0o600
    assert CurveKeyPair.load_zcert(tmp_path / "server.key") == pair
    (tmp_path / "server.key_secret").unlink()
    assert CurveKeyPair.load_zcert(tmp_path / "server.key").secret is None


# -- the handshake, box by box ---------------------------------------------------------


def curve_pair(client_transient=None, server_transient=None, client_bugs=NO_BUGS, zap=None, cookie_keys=None):
    client = Connection(
        "DEALER",
        as_server=False,
        bugs=client_bugs,
        mechanism=partial(
            CurveMechanism,
            secret_key=parse_key(CLIENT_SECRET),
            server_key=parse_key(SERVER_PUBLIC),
            transient=client_transient,
        ),
    )
    server = Connection(
        "ROUTER",
        as_server=True,
        zap=zap,
        mechanism=partial(
            CurveMechanism,
            secret_key=parse_key(SERVER_SECRET),
            transient=server_transient,
            cookie_keys=cookie_keys or CookieKeys(),
        ),
    )
    return client, server


def test_hello_box_checks_out_with_pynacl():
    c_t = PrivateKey.generate()
    client, _ = curve_pair(client_transient=c_t)
    client.receive_data(zmtp.connection.Greeting(mechanism="CURVE", as_server=True).encode())
    out = client.data_to_send()
    hello = out[out.index(b"\x05HELLO") - 2 :][:202]
    assert hello[:2] == b"\x04\xc8"  # a short command of 200 octets
    body = hello[2:]
    assert body[6:8] == b"\x01\x00" and body[8:80] == b"\x00" * 72
    assert body[80:112] == bytes(c_t.public_key)
    nonce = body[112:120]
    assert nonce == (1).to_bytes(8, "big")
    opened = Box(PrivateKey(parse_key(SERVER_SECRET)), c_t.public_key).decrypt(
        body[120:200], b"CurveZMQHELLO---" + nonce
    )
    assert opened == b"\x00" * 64


def test_full_handshake_and_messages():
    client, server = curve_pair()
    ec, es = pump(client, server)
    assert isinstance(ec[-1], HandshakeComplete) and isinstance(es[-1], HandshakeComplete)
    assert server.mechanism.client_key == parse_key(CLIENT_PUBLIC)
    client.send_message([b"secret", b"x" * 300])
    wire = client.data_to_send()
    assert b"secret" not in wire and b"\x07MESSAGE" in wire
    assert server.receive_data(wire) == [Message([b"secret", b"x" * 300])]
    client.send_ping(10, b"ctx")  # commands travel boxed too
    wire = client.data_to_send()
    assert b"PING" not in wire
    events = server.receive_data(wire)
    assert events[0].context == b"ctx"


def test_message_box_uses_direction_prefixes():
    c_t, s_t = PrivateKey.generate(), PrivateKey.generate()
    client, server = curve_pair(c_t, s_t)
    pump(client, server)
    client.send_message([b"hi"])
    wire = client.data_to_send()
    nonce, box = wire[10:18], wire[18:]
    plain = Box(s_t, c_t.public_key).decrypt(box, b"CurveZMQMESSAGEC" + nonce)
    assert plain == b"\x00hi"
    server.receive_data(wire)
    server.send_message([b"yo"])
    wire = server.data_to_send()
    plain = Box(c_t, PublicKey(bytes(s_t.public_key))).decrypt(wire[18:], b"CurveZMQMESSAGES" + wire[10:18])
    assert plain == b"\x00yo"


def test_replayed_message_nonce_closes():
    client, server = curve_pair()
    pump(client, server)
    client.send_message([b"once"])
    wire = client.data_to_send()
    server.receive_data(wire)
    with pytest.raises(ProtocolError, match="does not increase"):
        server.receive_data(wire)


def test_repeat_nonce_bug_is_caught():
    client, server = curve_pair(client_bugs=ProtocolBugs(curve_repeat_nonce=True))
    with pytest.raises(ProtocolError, match="does not increase"):
        pump(client, server)


def test_tampered_box_closes():
    client, server = curve_pair()
    pump(client, server)
    client.send_message([b"data"])
    wire = bytearray(client.data_to_send())
    wire[-1] ^= 1
    with pytest.raises(ProtocolError, match="tampered"):
        server.receive_data(bytes(wire))


@pytest.mark.parametrize("size", [0, 1, 200, 1024, 300_000])
def test_in_place_boxes_match_the_public_binding(monkeypatch, size):
    """The traffic phase seals and opens with libsodium through PyNaCl's cffi module, in place;
    the same frames must come out of PyNaCl's public binding, byte for byte."""
    from zmtp.mechanisms import curve

    client, server = curve_pair()
    pump(client, server)
    body = bytes(range(256)) * (size // 256) + b"\xaa" * (size % 256)
    fast = [bytes(client.mechanism.encrypt(flags, body)) for flags in (0, 1, 2)]
    client.mechanism._send_nonce -= 3
    monkeypatch.setattr(curve, "_lib", None)
    slow = [bytes(client.mechanism.encrypt(flags, body)) for flags in (0, 1, 2)]
    assert fast == slow
    for flags, frame in zip((0, 1, 2), fast, strict=True):
        header = 9 if frame[0] & 0x02 else 2
        assert server.mechanism.decrypt(b"MESSAGE", frame[header + 8 :]) == (flags, body)
    monkeypatch.undo()
    server.mechanism._recv_nonce -= 3
    for flags, frame in zip((0, 1, 2), fast, strict=True):
        header = 9 if frame[0] & 0x02 else 2
        assert server.mechanism.open_message(frame[header:]) == (flags, body)


def test_in_place_open_refuses_tampering_and_replays():
    client, server = curve_pair()
    pump(client, server)
    frame = bytes(client.mechanism.encrypt(0, b"payload"))[2:]
    bad = bytearray(frame)
    bad[-1] ^= 1
    with pytest.raises(ProtocolError, match="tampered"):
        server.mechanism.open_message(bytes(bad))
    server.mechanism._recv_nonce = 0
    assert server.mechanism.open_message(frame) == (0, b"payload")
    with pytest.raises(ProtocolError, match="does not increase"):
        server.mechanism.open_message(frame)
    inner_flags = bytearray(bytes(client.mechanism.encrypt(0x04, b"x"))[2:])
    with pytest.raises(ProtocolError, match="reserved bits"):
        server.mechanism.open_message(bytes(inner_flags))


def test_cleartext_command_after_handshake_closes():
    from zmtp import command

    client, server = curve_pair()
    pump(client, server)
    with pytest.raises(ProtocolError, match="cleartext PING"):
        server.receive_data(command.ping())


def test_wrong_server_key_fails_the_handshake():
    client = Connection(
        "DEALER",
        as_server=False,
        mechanism=partial(
            CurveMechanism, secret_key=parse_key(CLIENT_SECRET), server_key=CurveKeyPair.generate().public
        ),
    )
    _, server = curve_pair()
    with pytest.raises(ProtocolError, match="HELLO box does not open"):
        pump(client, server)
    assert server.state is State.CLOSED


def test_hello_of_the_wrong_size_closes():
    from zmtp.frame import encode_command
    from zmtp.greeting import Greeting

    _, server = curve_pair()
    server.receive_data(Greeting(mechanism="CURVE").encode())
    with pytest.raises(ProtocolError, match="exactly 200"):
        server.receive_data(encode_command(b"HELLO", b"\x01\x00" + b"\x00" * 100))


def test_welcome_naming_an_all_zero_transient_key_closes():
    # libzmq 4.3.5 asserts on this WELCOME (crypto_box_beforenm fails) and aborts the whole process.
    from zmtp.frame import encode_command

    c_t = PrivateKey.generate()
    client, _ = curve_pair(client_transient=c_t)
    client.receive_data(zmtp.connection.Greeting(mechanism="CURVE", as_server=True).encode())
    client.data_to_send()  # greeting and HELLO
    nonce = bytes(range(16))
    box = (
        Box(PrivateKey(parse_key(SERVER_SECRET)), c_t.public_key)
        .encrypt(bytes(32) + bytes(96), b"WELCOME-" + nonce)
        .ciphertext
    )
    with pytest.raises(ProtocolError, match="no usable shared key"):
        client.receive_data(encode_command(b"WELCOME", nonce + box))
    assert client.state is State.CLOSED
    assert b"INITIATE" not in client.data_to_send()


def test_server_forgets_transient_keys_until_initiate():
    client, server = curve_pair()
    for _ in range(3):  # greeting stages, then HELLO -> WELCOME
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    assert server.mechanism.transient is None and server.mechanism.peer_transient is None


def test_zap_gets_the_client_public_key():
    client, server = curve_pair(zap=ZapSettings("curve", "127.0.0.1", b""))
    _, es = pump(client, server)
    req = es[-1].request
    assert req.mechanism == "CURVE" and req.client_key == parse_key(CLIENT_PUBLIC)


# -- against libzmq ------------------------------------------------------------------


def zmq_curve_server(zctx, sock_type):
    s = zctx.socket(sock_type)
    s.curve_server, s.curve_secretkey, s.linger = True, SERVER_SECRET.encode(), 0
    s.bind("tcp://127.0.0.1:0")
    return s, s.last_endpoint.decode()


CLIENT_OPTS = dict(linger=0, curve_secretkey=CLIENT_SECRET, curve_serverkey=SERVER_PUBLIC)
SERVER_OPTS = dict(linger=0, curve_server=True, curve_secretkey=SERVER_SECRET)


async def test_impl_client_libzmq_server_req_rep(ctx, zctx):
    server, ep = zmq_curve_server(zctx, zmq.REP)
    req = ctx.socket(zmtp.REQ, zmtp.SocketOptions(**CLIENT_OPTS))
    await req.connect(ep)
    for i in range(3):
        await req.send(b"q%d" % i)
        assert await asyncio.wait_for(server.recv(), T) == b"q%d" % i
        await server.send(b"a" * 70000)
        assert await asyncio.wait_for(req.recv_multipart(), T) == [b"a" * 70000]


async def test_libzmq_client_impl_server_dealer_router(ctx, zctx):
    router = ctx.socket(zmtp.ROUTER, zmtp.SocketOptions(**SERVER_OPTS))
    ep = await router.bind("tcp://127.0.0.1:0")
    dealer = zctx.socket(zmq.DEALER)
    dealer.curve_secretkey, dealer.curve_publickey, dealer.curve_serverkey = (
        CLIENT_SECRET.encode(),
        CLIENT_PUBLIC.encode(),
        SERVER_PUBLIC.encode(),
    )
    dealer.linger = 0
    dealer.connect(ep)
    await dealer.send_multipart([b"hello", b""])
    rid, *rest = await asyncio.wait_for(router.recv_multipart(), T)
    assert rest == [b"hello", b""]
    await router.send_multipart([rid, b"back"])
    assert await asyncio.wait_for(dealer.recv_multipart(), T) == [b"back"]


async def test_pub_sub_with_subscriptions_under_curve(ctx, zctx):
    pub, ep = zmq_curve_server(zctx, zmq.PUB)
    sub = ctx.socket(zmtp.SUB, zmtp.SocketOptions(**CLIENT_OPTS))
    sub.subscribe(b"A")  # goes inside a MESSAGE box, flagged as a command
    await sub.connect(ep)
    got = None
    for _ in range(200):
        pub.send(b"B-no")
        pub.send(b"A-yes")
        try:
            got = await asyncio.wait_for(sub.recv_multipart(), 0.02)
            break
        except TimeoutError:
            continue
    assert got == [b"A-yes"]


async def test_heartbeats_under_curve(ctx, zctx):
    server, ep = zmq_curve_server(zctx, zmq.ROUTER)
    server.heartbeat_ivl, server.heartbeat_timeout = 30, 300
    dealer = ctx.socket(
        zmtp.DEALER, zmtp.SocketOptions(heartbeat_ivl=0.03, heartbeat_timeout=0.3, routing_id=b"hb", **CLIENT_OPTS)
    )
    await dealer.connect(ep)
    for i in range(10):
        await dealer.send(b"%d" % i)
        rid, body = await asyncio.wait_for(server.recv_multipart(), T)
        await asyncio.sleep(0.05)
        await server.send_multipart([rid, body])
        assert await asyncio.wait_for(dealer.recv_multipart(), T) == [body]
    assert len(dealer.peers) == 1


async def test_wrong_server_key_against_libzmq(ctx, zctx):
    server, ep = zmq_curve_server(zctx, zmq.PULL)
    push = ctx.socket(
        zmtp.PUSH,
        zmtp.SocketOptions(
            linger=0, curve_secretkey=CLIENT_SECRET, curve_serverkey=CurveKeyPair.generate().public, reconnect_ivl=0
        ),
    )
    await push.connect(ep)
    await push.send(b"never")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server.recv(), 0.5)


async def test_impl_zap_denies_a_libzmq_client_key(ctx, zctx):
    class OnlyKnownKeys:
        async def authenticate(self, request):
            if request.client_key == parse_key(CLIENT_PUBLIC):
                return zmtp.ZapResponse.success(request.request_id, "known")
            return zmtp.ZapResponse.failure(request.request_id, "unknown key")

    ctx.set_zap_handler(OnlyKnownKeys())
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(**SERVER_OPTS))
    ep = await pull.bind("tcp://127.0.0.1:0")
    for secret, should_pass in ((CLIENT_SECRET, True), (CurveKeyPair.generate().secret, False)):
        push = zctx.socket(zmq.PUSH)
        pair = CurveKeyPair.from_secret(secret)
        push.curve_secretkey, push.curve_publickey = pair.secret_z85.encode(), pair.public_z85.encode()
        push.curve_serverkey, push.linger = SERVER_PUBLIC.encode(), 0
        push.connect(ep)
        await push.send(b"knock")
        if should_pass:
            assert await asyncio.wait_for(pull.recv_multipart(), T) == [b"knock"]
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pull.recv_multipart(), 0.5)


def test_key_tool(tmp_path, capsys):
    from zmtp.keytool import main

    assert main(["public", SERVER_SECRET]) == 0
    assert SERVER_PUBLIC in capsys.readouterr().out
    assert main(["generate", "--zcert", str(tmp_path / "c")]) == 0
    assert main(["show", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "secret-key  z85" in out
    assert main(["public", "not-a-key"]) == 2
    assert "40 Z85 characters" in capsys.readouterr().err


def test_cookie_key_rotation_keeps_one_previous_key():
    def up_to_welcome(keys):
        client, server = curve_pair(cookie_keys=keys)
        for _ in range(3):  # greeting stages, then HELLO -> WELCOME
            server.receive_data(client.data_to_send())
            client.receive_data(server.data_to_send())
        return client, server

    keys = CookieKeys()
    client, server = up_to_welcome(keys)
    keys.rotate()  # a rotation while INITIATE is in flight: the previous key still opens the cookie
    _ec, es = pump(client, server)
    assert isinstance(es[-1], HandshakeComplete)

    client2, server2 = up_to_welcome(keys)
    keys.rotate()
    keys.rotate()  # two rotations: the cookie's key is gone
    with pytest.raises(ProtocolError, match="cookie does not open"):
        pump(client2, server2)


def _replay_initiate(bugs: zmtp.ProtocolBugs) -> tuple[Connection, bytes]:
    """A handshake completes; a second client's connection to the same server then gets the first INITIATE."""
    keys = CookieKeys()
    client, server = curve_pair(cookie_keys=keys)
    for _ in range(3):  # greeting stages, then HELLO -> WELCOME
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    initiate = client.data_to_send()
    server.receive_data(initiate)
    client.receive_data(server.data_to_send())
    assert client.state is server.state is zmtp.connection.State.TRAFFIC
    client2, _ = curve_pair(cookie_keys=keys)
    server2 = Connection(
        "ROUTER",
        as_server=True,
        bugs=bugs,
        mechanism=partial(CurveMechanism, secret_key=parse_key(SERVER_SECRET), cookie_keys=keys),
    )
    for _ in range(3):
        server2.receive_data(client2.data_to_send())
        client2.receive_data(server2.data_to_send())
    return server2, initiate


def test_an_initiate_replayed_on_another_connection_is_refused():
    server2, initiate = _replay_initiate(zmtp.ProtocolBugs())
    with pytest.raises(ProtocolError, match="cookie an earlier INITIATE used"):
        server2.receive_data(initiate)


def test_the_cookie_replay_knob_lets_the_replay_through():
    server2, initiate = _replay_initiate(zmtp.ProtocolBugs(curve_cookie_replay_accepted=True))
    server2.receive_data(initiate)
    assert b"READY" in server2.data_to_send()


def test_spent_cookies_are_forgotten_with_their_key():
    keys = CookieKeys()
    assert keys.spend(b"n" * 16) and not keys.spend(b"n" * 16)
    keys.rotate()
    assert not keys.spend(b"n" * 16)  # its key still opens cookies: still spent
    keys.rotate()
    assert keys.spend(b"n" * 16)  # its key is gone, so no cookie of it can open any more


async def test_libzmq_client_sees_the_zap_refusal(ctx, zctx):
    from zmq.utils.monitor import recv_monitor_message

    class DenyAll:
        async def authenticate(self, request):
            return zmtp.ZapResponse.failure(request.request_id, "denied")

    ctx.set_zap_handler(DenyAll())
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(**SERVER_OPTS))
    ep = await pull.bind("tcp://127.0.0.1:0")
    push = zctx.socket(zmq.PUSH)
    push.curve_secretkey, push.curve_publickey = CLIENT_SECRET.encode(), CLIENT_PUBLIC.encode()
    push.curve_serverkey, push.linger = SERVER_PUBLIC.encode(), 0
    monitor = push.get_monitor_socket()
    push.connect(ep)
    events = []
    async with asyncio.timeout(T):
        while zmq.EVENT_HANDSHAKE_FAILED_AUTH not in events:
            events.append((await recv_monitor_message(monitor))["event"])
    # libzmq reads our ERROR "400" as an authentication failure
    assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in events
    monitor.close(0)


_TRANSIENTS = (PrivateKey.generate(), PrivateKey.generate())
_FRAME = st.one_of(st.binary(max_size=20), st.binary(min_size=250, max_size=1100), st.just(b"y" * 70000))
_PIECE = st.one_of(st.lists(_FRAME, min_size=1, max_size=3), st.just(None))  # None: a PING


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECE, max_size=30), st.booleans(), st.data())
def test_boxes_opened_where_they_lie_give_what_one_by_one_gives(pieces, rfc_form, data):
    """open_window (a window's boxes opened in place) against the public binding, box by box:
    the same events, the same error, and the same bytes back (PONGs), in any chunking, with
    one octet changed or not, with MESSAGE in a data frame (libzmq's form) or a command frame."""
    from unittest import mock

    from zmtp.events import Messages
    from zmtp.mechanisms import curve

    bugs = ProtocolBugs(curve_message_command_frame=True) if rfc_form else NO_BUGS
    client, server = curve_pair(*_TRANSIENTS, client_bugs=bugs)
    pump(client, server)
    for piece in pieces:
        if piece is None:
            client.send_ping(0, b"p")
        else:
            client.send_message(piece)
    raw = bytearray(client.data_to_send())
    if raw and data.draw(st.booleans()):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=6)))
    chunks = [bytes(raw[a:b]) for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]

    def run(conn):
        events, error = [], ""
        for chunk in chunks:
            try:
                got = conn.receive_data(chunk, batched=True)
            except ProtocolError as exc:
                error = str(exc)
                break
            for ev in got:
                events += [Message(m) for m in ev.messages] if isinstance(ev, Messages) else [ev]
        return events, error, conn.data_to_send()

    fast = run(server)
    _, other = curve_pair(*_TRANSIENTS)  # same transient keys: the same traffic keys
    pump(_, other)
    with mock.patch.object(curve, "_lib", None):
        slow = run(other)
    assert fast == slow
