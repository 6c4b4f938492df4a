"""Hostile and broken peers: each costs only its own connection, never the socket."""

from __future__ import annotations

import asyncio

import pytest

import zmtp
from zmtp import command
from zmtp.bugs import ProtocolBugs
from zmtp.connection import Connection
from zmtp.events import Ping
from zmtp.frame import encode_frame, encode_message_bytes

from .rawpeer import RawPeer

T = 5.0


async def sane(pull, ctx, endpoint: str) -> None:
    """A fresh, well-behaved PUSH still gets through: the socket is alive and serving."""
    push = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0))
    await push.connect(endpoint)
    await push.send(b"sanity")
    assert await asyncio.wait_for(pull.recv_multipart(), T) == [b"sanity"]
    await push.close()


@pytest.fixture
async def pull(ctx):
    sock = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, handshake_timeout=0.3, max_msg_size=1000))
    await sock.bind("tcp://127.0.0.1:0")
    return sock


async def raw_client(endpoint: str, **kw) -> RawPeer:
    peer = await RawPeer.open(endpoint, Connection("PUSH", as_server=False, **kw))
    await peer.handshake()
    return peer


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\x00" * 64, id="zeros"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
        pytest.param(b"\xff" + b"\x00" * 8 + b"\x7f\x03\x01" + b"nope" + b"\x00" * 48, id="bad-mechanism"),
        pytest.param(
            b"\xff" + b"\x00" * 8 + b"\x7f\x03\x01NULL" + b"\x00" * 16 + b"\x07" + b"\x00" * 31, id="as-server-7"
        ),
    ],
)
async def test_garbage_instead_of_a_greeting(pull, ctx, garbage):
    ep = pull.last_endpoint
    peer = await RawPeer.open(ep)
    await peer.send_raw(garbage)
    await peer.closed_by_peer()
    await sane(pull, ctx, ep)


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param(b"\x08\x00", id="reserved-flag"),
        pytest.param(b"\x04\x00", id="empty-command"),
        pytest.param(b"\x04\x02\x00\x00", id="zero-length-command-name"),
        pytest.param(b"\x04\x03\x09SU", id="truncated-command-name"),
        pytest.param(b"\x04\x05\x04PING", id="ping-without-ttl"),
        pytest.param(b"\x02\x7f\xff\xff\xff\xff\xff\xff\xff", id="huge-size"),
        pytest.param(b"\x02" + (1001).to_bytes(8, "big"), id="over-max-msg-size"),
        pytest.param(b"\x05\x06\x04PING\x00\x00", id="more-on-command"),
        pytest.param(b"\x04\x08\x05READY\x01\x00", id="ready-again-malformed"),
    ],
)
async def test_malformed_traffic_closes_only_that_connection(pull, ctx, frames):
    ep = pull.last_endpoint
    good = await raw_client(ep)
    bad = await raw_client(ep)
    await bad.send_raw(frames)
    await bad.closed_by_peer()
    good.conn.send_message([b"still-here"])
    await good.flush()
    assert await asyncio.wait_for(pull.recv_multipart(), T) == [b"still-here"]
    await sane(pull, ctx, ep)


@pytest.mark.parametrize(
    "ready",
    [
        pytest.param(b"\x04\x07\x05READY\x00", id="zero-length-property-name"),
        pytest.param(b"\x04\x0a\x05READY\x03abc\x00\x00", id="truncated-value-size"),
        pytest.param(command.ready([("Socket-Type", b"PULL")]), id="wrong-socket-type"),
        pytest.param(encode_frame(b"\x05READX", command=True), id="wrong-command"),
        pytest.param(encode_message_bytes([b"sneaky"]), id="message-before-ready"),
    ],
)
async def test_bad_handshakes(pull, ctx, ready):
    from zmtp.greeting import Greeting

    ep = pull.last_endpoint
    peer = await RawPeer.open(ep)
    await peer.send_raw(Greeting().encode() + ready)
    await peer.closed_by_peer()
    await sane(pull, ctx, ep)


async def test_socket_type_mismatch_gets_an_error_command(pull):
    from zmtp.greeting import Greeting

    peer = await RawPeer.open(pull.last_endpoint)
    await peer.send_raw(Greeting().encode() + command.ready([("Socket-Type", b"SUB")]))
    seen = await peer.closed_by_peer()
    assert seen.endswith(command.error("Invalid-socket-type"))


async def test_peer_that_never_greets_is_dropped_after_handshake_timeout(pull, ctx):
    peer = await RawPeer.open(pull.last_endpoint)
    seen = await peer.closed_by_peer(timeout=3.0)  # handshake_timeout is 0.3 s
    assert seen == b"\xff" + b"\x00" * 7 + b"\x01\x7f"  # only our signature went out
    await sane(pull, ctx, pull.last_endpoint)


async def test_half_greeting_is_dropped_too(pull):
    peer = await RawPeer.open(pull.last_endpoint)
    await peer.send_raw(b"\xff" + b"\x00" * 8 + b"\x7f\x03")
    await peer.closed_by_peer(timeout=3.0)


async def test_message_cut_by_a_dropped_connection_is_never_delivered(pull, ctx):
    ep = pull.last_endpoint
    peer = await raw_client(ep)
    await peer.send_raw(encode_frame(b"part-1", more=True) + encode_frame(b"part-2", more=True))
    peer.writer.transport.abort()
    await asyncio.sleep(0.1)
    await sane(pull, ctx, ep)  # the first message to arrive is the sanity one


async def test_over_max_msg_size_message_closes_sender(ctx):
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0, max_msg_size=100))
    ep = await pull.bind("tcp://127.0.0.1:0")
    push = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=0, reconnect_ivl=0))
    await push.connect(ep)
    await push.send(b"x" * 101)
    await push.send(b"small")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pull.recv_multipart(), 0.3)
    await sane(pull, ctx, ep)


async def test_error_command_from_server_stops_reconnecting(ctx, caplog):
    pub = ctx.socket(zmtp.PUB, zmtp.SocketOptions(linger=0))
    ep = await pub.bind("tcp://127.0.0.1:0")
    req = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0, reconnect_ivl=0.01))
    await req.connect(ep)
    await asyncio.sleep(0.3)
    refusals = [r for r in caplog.records if r.name == "zmtp.engine" and "refused the handshake" in r.getMessage()]
    assert len(refusals) == 1  # RFC 23: no reconnect with the same credentials
    assert "not reconnecting" in caplog.text


# -- heartbeats ------------------------------------------------------------------


async def test_heartbeat_timeout_closes_a_silent_peer(ctx):
    router = ctx.socket(
        zmtp.ROUTER, zmtp.SocketOptions(linger=0, heartbeat_ivl=0.05, heartbeat_timeout=0.2, heartbeat_ttl=1.0)
    )
    ep = await router.bind("tcp://127.0.0.1:0")
    # A DEALER that completes the handshake and then never answers a PING.
    peer = await RawPeer.open(ep, Connection("DEALER", as_server=False, bugs=ProtocolBugs(ignore_ping=True)))
    await peer.handshake()
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises((ConnectionResetError, ConnectionError)):
        async with asyncio.timeout(3):
            while True:
                await peer.pump_once()
    assert loop.time() - start >= 0.2
    pings = [e for e in peer.events if isinstance(e, Ping)]
    assert pings and pings[0].ttl == 10  # 1.0 s in tenths


async def test_heartbeats_keep_a_busy_link_alive(ctx):
    hb = zmtp.SocketOptions(linger=0, heartbeat_ivl=0.02, heartbeat_timeout=0.1, heartbeat_ttl=0.2)
    router = ctx.socket(zmtp.ROUTER, hb)
    dealer = ctx.socket(zmtp.DEALER, hb)
    await dealer.connect(await router.bind("tcp://127.0.0.1:0"))
    for i in range(40):
        await dealer.send(b"%d" % i)
        rid, body = await asyncio.wait_for(router.recv_multipart(), T)
        await router.send_multipart([rid, body])
        assert await asyncio.wait_for(dealer.recv_multipart(), T) == [body]
        await asyncio.sleep(0.01)
    assert len(router.peers) == 1 and len(dealer.peers) == 1


async def test_peer_ping_ttl_closes_when_traffic_stops(ctx):
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(linger=0))
    ep = await pull.bind("tcp://127.0.0.1:0")
    peer = await raw_client(ep)
    peer.conn.send_ping(2, b"")  # "close me if you hear nothing for 0.2 s"
    await peer.flush()
    await peer.closed_by_peer(timeout=3.0)
