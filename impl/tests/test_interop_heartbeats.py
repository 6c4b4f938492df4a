"""Heartbeats and the ZMTP 3.0 subscription form, against libzmq and raw peers."""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

import zmtp
from zmtp.bugs import ProtocolBugs
from zmtp.connection import Connection
from zmtp.events import Message, Subscribe

from .rawpeer import RawPeer

pytestmark = pytest.mark.interop
T = 5.0

ZMQ_HB = {"heartbeat_ivl": 20, "heartbeat_timeout": 200, "heartbeat_ttl": 500}  # milliseconds


def heartbeating_router() -> tuple[zmq.Context, zmq.Socket, zmq.Socket]:
    """A libzmq ROUTER with heartbeats on, and a monitor socket on it."""
    sync = zmq.Context()
    router = sync.socket(zmq.ROUTER)
    router.linger = 0
    for k, v in ZMQ_HB.items():
        router.setsockopt(getattr(zmq, k.upper()), v)
    return sync, router, router.get_monitor_socket()


def disconnects(monitor: zmq.Socket) -> int:
    n = 0
    while monitor.poll(0):
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            n += 1
    return n


@pytest.mark.parametrize("impl_binds", [True, False], ids=["impl-binds", "libzmq-binds"])
async def test_heartbeats_on_both_sides_over_many_round_trips(ctx, caplog, impl_binds):
    sync, router, monitor = heartbeating_router()
    dealer = ctx.socket(
        zmtp.DEALER,
        zmtp.SocketOptions(linger=0, heartbeat_ivl=0.02, heartbeat_timeout=0.2, heartbeat_ttl=0.5),
    )
    try:
        if impl_binds:
            ep = await dealer.bind("tcp://127.0.0.1:0")
            router.connect(ep)
        else:
            router.bind("tcp://127.0.0.1:0")
            await dealer.connect(router.last_endpoint.decode())
        for i in range(60):
            await dealer.send_multipart([b"%d" % i])
            async with asyncio.timeout(T):
                while not router.poll(0):
                    await asyncio.sleep(0.002)
            rid, body = router.recv_multipart()
            router.send_multipart([rid, body])
            assert await asyncio.wait_for(dealer.recv_multipart(), T) == [body]
            await asyncio.sleep(0.01)  # several heartbeat intervals over the whole run
        assert disconnects(monitor) == 0
        assert caplog.text.count("handshake with") == 1  # never reconnected
    finally:
        monitor.close(0)
        router.close(0)
        sync.term()


async def test_libzmq_drops_a_peer_that_ignores_pings(ctx):
    sync, router, monitor = heartbeating_router()
    router.bind("tcp://127.0.0.1:0")
    deaf = ctx.socket(zmtp.DEALER, zmtp.SocketOptions(linger=0, reconnect_ivl=0, bugs=ProtocolBugs(ignore_ping=True)))
    try:
        await deaf.connect(router.last_endpoint.decode())
        async with asyncio.timeout(T):
            while True:
                if monitor.poll(0) and recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
                    break
                await asyncio.sleep(0.01)
    finally:
        monitor.close(0)
        router.close(0)
        sync.term()


async def test_zmtp_3_0_subscriber_against_libzmq_xpub():
    zctx = zmq.asyncio.Context()
    xpub = zctx.socket(zmq.XPUB)
    xpub.linger = 0
    xpub.bind("tcp://127.0.0.1:0")
    try:
        peer = await RawPeer.open(
            xpub.last_endpoint.decode(), Connection("SUB", as_server=False, bugs=ProtocolBugs(greeting_minor=0))
        )
        await peer.handshake()
        peer.conn.send_subscribe(b"A")
        raw = peer.conn.data_to_send()
        assert raw == b"\x00\x02\x01A"  # our 3.0 greeting makes us use the frame form
        await peer.send_raw(raw)
        assert await asyncio.wait_for(xpub.recv(), T) == b"\x01A"
        await xpub.send(b"A-data")
        async with asyncio.timeout(T):
            while not any(isinstance(e, Message) for e in peer.events):
                await peer.pump_once()
        assert next(e for e in peer.events if isinstance(e, Message)).frames == [b"A-data"]
    finally:
        zctx.destroy(0)


async def test_zmtp_3_0_subscriber_against_impl_pub(ctx):
    pub = ctx.socket(zmtp.PUB, zmtp.SocketOptions(linger=0))
    ep = await pub.bind("tcp://127.0.0.1:0")
    peer = await RawPeer.open(ep, Connection("SUB", as_server=False, bugs=ProtocolBugs(greeting_minor=0)))
    await peer.handshake()
    peer.conn.send_subscribe(b"A")
    await peer.flush()
    async with asyncio.timeout(T):
        while not any(isinstance(e, Message) for e in peer.events):
            await pub.send(b"A-data")
            try:
                await asyncio.wait_for(peer.pump_once(), 0.05)
            except TimeoutError:
                pass
    assert next(e for e in peer.events if isinstance(e, Message)).frames == [b"A-data"]


async def test_impl_sub_uses_frames_with_a_3_0_publisher(ctx):
    got: asyncio.Queue = asyncio.Queue()

    async def serve(reader, writer):
        peer = RawPeer(reader, writer, Connection("PUB", as_server=True, bugs=ProtocolBugs(greeting_minor=0)))
        await peer.flush()
        try:
            while True:
                data = await peer.pump_once()
                if peer.conn.state.value == "traffic":
                    for e in peer.events:
                        if isinstance(e, Subscribe):
                            await got.put((e, data))
                    peer.events.clear()
        except ConnectionError:
            pass

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sub = ctx.socket(zmtp.SUB, zmtp.SocketOptions(linger=0))
    sub.subscribe(b"A")
    await sub.connect(f"tcp://127.0.0.1:{port}")
    event, raw = await asyncio.wait_for(got.get(), T)
    assert event == Subscribe(b"A", legacy=True)
    assert raw.endswith(b"\x00\x02\x01A")
    await sub.close()
    server.close()
