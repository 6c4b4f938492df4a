"""The draft socket types: CLIENT/SERVER (RFC 47), RADIO/DISH (RFC 48), SCATTER/GATHER (RFC 49),
over ZMTP 3.1 as RFC 37 carries them. Wire layouts are checked byte for byte with a raw peer."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import zmtp
from zmtp import command
from zmtp.connection import Connection, SocketTypeMismatch
from zmtp.errors import ProtocolError
from zmtp.events import Join, Leave, Message
from zmtp.socket_type import VALID_PEERS, SocketType

from .helpers import handshake, pump
from .rawpeer import RawPeer

T = 5.0
DRAFT = ["CLIENT", "SERVER", "RADIO", "DISH", "SCATTER", "GATHER"]
ALL_TYPES = [t.value for t in SocketType]


def opts(**kw) -> zmtp.SocketOptions:
    return zmtp.SocketOptions(linger=0, **kw)


async def recv(sock, timeout: float = T) -> list[bytes]:
    return await asyncio.wait_for(sock.recv_multipart(), timeout)


async def nothing_arrives(sock, within: float = 0.2) -> bool:
    try:
        await asyncio.wait_for(sock.recv_multipart(), within)
    except TimeoutError:
        return True
    return False


async def pair(ctx, btype, ctype, bopts=None, copts=None):
    b = ctx.socket(btype, bopts or opts())
    c = ctx.socket(ctype, copts or opts())
    ep = await b.bind("tcp://127.0.0.1:0")
    await c.connect(ep)
    return b, c, ep


async def until(predicate, timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def raw_peer(endpoint: str, socket_type: str) -> RawPeer:
    peer = await RawPeer.open(endpoint, Connection(socket_type, as_server=False))
    await peer.handshake()
    return peer


async def read_exactly(peer: RawPeer, n: int) -> bytes:
    return await asyncio.wait_for(peer.reader.readexactly(n), T)


async def read_nothing(peer: RawPeer, within: float = 0.2) -> bool:
    try:
        await asyncio.wait_for(peer.reader.read(1), within)
    except TimeoutError:
        return True
    return False  # a byte, or the connection closed


# -- compatibility (RFC 37 "The Socket-Type Property") -----------------------------------


def _pairs_with_a_draft_type():
    return [(a, b) for a, b in itertools.product(ALL_TYPES, ALL_TYPES) if a in DRAFT or b in DRAFT]


@pytest.mark.parametrize(("client_type", "server_type"), _pairs_with_a_draft_type())
def test_compatibility_matrix(client_type, server_type):
    valid = {
        ("CLIENT", "SERVER"),
        ("SERVER", "CLIENT"),
        ("RADIO", "DISH"),
        ("DISH", "RADIO"),
        ("SCATTER", "GATHER"),
        ("GATHER", "SCATTER"),
    }
    if (client_type, server_type) in valid:
        client, server = handshake(client_type, server_type)
        assert client.peer_socket_type == server_type and server.peer_socket_type == client_type
    else:
        with pytest.raises(SocketTypeMismatch):
            handshake(client_type, server_type)


def test_valid_peers_table_is_rfc_37s():
    for a, b in [("CLIENT", "SERVER"), ("RADIO", "DISH"), ("SCATTER", "GATHER")]:
        assert VALID_PEERS[a] == {b} and VALID_PEERS[b] == {a}


@pytest.mark.parametrize("socket_type", DRAFT)
def test_draft_types_never_downgrade(socket_type):
    # A ZMTP 2.0 greeting (a PAIR, type 0): RFC 15 has no number for these types.
    server = Connection(socket_type, as_server=True)
    with pytest.raises(ProtocolError, match=r"exists only in ZMTP 3\.1"):
        server.receive_data(b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x01\x00")
    v1 = Connection(socket_type, as_server=True)
    with pytest.raises(ProtocolError, match=r"exists only in ZMTP 3\.1"):
        v1.receive_data(b"\x01\x00")


@pytest.mark.parametrize("socket_type", DRAFT)
def test_draft_types_announce_no_identity(socket_type):
    (peer_type,) = VALID_PEERS[socket_type]
    _client, server = handshake(socket_type, peer_type)
    assert list(server.peer_metadata.keys()) == ["Socket-Type"]


# -- JOIN and LEAVE (RFC 37 "The Radio-Dish Pattern") -------------------------------------


def test_join_and_leave_bytes():
    # join = command-size %d4 "JOIN" group; leave = command-size %d5 "LEAVE" group
    assert command.join(b"weather") == b"\x04\x0c\x04JOINweather"
    assert command.leave(b"weather") == b"\x04\x0d\x05LEAVEweather"
    assert command.join(b"") == b"\x04\x05\x04JOIN"
    long = b"g" * 255
    assert command.join(long) == b"\x06" + (260).to_bytes(8, "big") + b"\x04JOIN" + long


@pytest.mark.parametrize("group", [b"g" * 256, b"a\x00b"])
def test_bad_groups_are_not_sent(group):
    with pytest.raises(ValueError, match="radio-dish"):
        command.join(group)
    with pytest.raises(ValueError, match="radio-dish"):
        command.leave(group)


def test_join_and_leave_reach_a_radio_as_events():
    dish, radio = handshake("DISH", "RADIO")
    dish.send_join(b"a")
    dish.send_leave(b"a")
    _, events = pump(dish, radio)
    assert events == [Join(b"a"), Leave(b"a")]


@pytest.mark.parametrize("data", [b"a\x00b", b"g" * 256])
def test_malformed_join_is_a_protocol_error(data):
    _dish, radio = handshake("DISH", "RADIO")
    body = b"\x04JOIN" + data
    frame = (b"\x04" + bytes((len(body),)) if len(body) < 256 else b"\x06" + len(body).to_bytes(8, "big")) + body
    with pytest.raises(ProtocolError, match="JOIN command"):
        radio.receive_data(frame)


def test_dish_connection_takes_group_and_body():
    radio, dish = handshake("RADIO", "DISH")
    radio.send_message([b"weather", b"sunny"])
    raw = radio.data_to_send()
    assert raw == b"\x01\x07weather\x00\x05sunny"  # group-part = %x01 short-size group; body-part
    assert dish.receive_data(raw) == [Message([b"weather", b"sunny"])]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x00\x05sunny", "not a group part"),  # no group part
        (b"\x03" + (7).to_bytes(8, "big") + b"weather\x00\x01x", "not a group part"),  # group in a long frame
        (b"\x01\x03a\x00b\x00\x01x", "zero octet"),  # group-char is %d1-255
        (b"\x01\x01a\x01\x01b\x00\x01c", "more than a group part"),  # multipart body
    ],
)
def test_dish_connection_refuses_other_layouts(raw, why):
    _radio, dish = handshake("RADIO", "DISH")
    with pytest.raises(ProtocolError, match=why):
        dish.receive_data(raw)


# -- RADIO / DISH sockets -------------------------------------------------------------


async def test_radio_sends_group_and_body_to_joined_dish_only(ctx):
    radio = ctx.socket(zmtp.RADIO, opts())
    ep = await radio.bind("tcp://127.0.0.1:0")
    peer = await raw_peer(ep, "DISH")
    await radio.send(b"before-join", group="weather")
    peer.conn.send_join(b"weather")
    await peer.flush()
    await until(lambda: any(b"weather" in g for g in radio._joined.values()))
    await radio.send(b"rain", group="news")
    await radio.send(b"prefix-only", group="weathe")
    await radio.send(b"sunny", group="weather")
    assert await read_exactly(peer, 2 + 7 + 2 + 5) == b"\x01\x07weather\x00\x05sunny"
    assert await read_nothing(peer)
    peer.close()


async def test_radio_counts_joins_per_peer(ctx):
    radio = ctx.socket(zmtp.RADIO, opts())
    ep = await radio.bind("tcp://127.0.0.1:0")
    peer = await raw_peer(ep, "DISH")
    for send in (peer.conn.send_join, peer.conn.send_join, peer.conn.send_leave):
        send(b"g")
    await peer.flush()
    await until(lambda: any(g.get(b"g") == 1 for g in radio._joined.values()))
    await radio.send(b"still", group="g")
    assert await read_exactly(peer, 2 + 1 + 2 + 5) == b"\x01\x01g\x00\x05still"
    peer.conn.send_leave(b"g")
    await peer.flush()
    await until(lambda: not any(radio._joined.values()))
    await radio.send(b"gone", group="g")
    assert await read_nothing(peer)
    peer.close()


async def test_dish_sends_join_and_leave_on_the_wire(ctx):
    dish = ctx.socket(zmtp.DISH, opts())
    dish.join("early")  # before any radio: sent right after the handshake
    ep = await dish.bind("tcp://127.0.0.1:0")
    peer = await raw_peer(ep, "RADIO")
    async with asyncio.timeout(T):
        while Join(b"early") not in peer.events:
            await peer.pump_once()
    peer.conn = None  # from here on, raw bytes
    dish.join("weather")
    assert await read_exactly(peer, 14) == b"\x04\x0c\x04JOINweather"
    dish.leave("weather")
    assert await read_exactly(peer, 15) == b"\x04\x0d\x05LEAVEweather"
    peer.close()


async def test_dish_join_rules(ctx):
    dish = ctx.socket(zmtp.DISH, opts())
    dish.join("a")
    with pytest.raises(zmtp.InvalidState, match="already joined"):
        dish.join(b"a")
    with pytest.raises(zmtp.InvalidState, match="not joined"):
        dish.leave("b")
    with pytest.raises(ValueError):
        dish.join("x" * 256)
    dish.leave("a")
    assert dish.groups == frozenset()


async def test_radio_dish_group_filtering(ctx):
    dish, radio, _ = await pair(ctx, zmtp.DISH, zmtp.RADIO)
    dish.join("a")
    dish.join("c")
    await until(lambda: sum(len(g) for g in radio._joined.values()) == 2)
    for group, body in [("a", b"1"), ("b", b"2"), ("ab", b"3"), ("c", b"4")]:
        await radio.send(body, group=group)
    first, second = await asyncio.wait_for(dish.recv_message(), T), await asyncio.wait_for(dish.recv_message(), T)
    assert (first.frames, first.group) == ([b"1"], b"a")
    assert (second.frames, second.group) == ([b"4"], b"c")
    assert await nothing_arrives(dish)
    dish.leave("a")
    await until(lambda: sum(len(g) for g in radio._joined.values()) == 1)
    await radio.send(b"5", group="a")
    await radio.send(b"6", group="c")
    assert await recv(dish) == [b"6"]


async def test_dish_filters_what_it_left_even_if_queued(ctx):
    dish, radio, _ = await pair(ctx, zmtp.DISH, zmtp.RADIO)
    dish.join("a")
    await until(lambda: any(radio._joined.values()))
    await radio.send(b"queued", group="a")
    await asyncio.sleep(0.1)  # arrived, not read
    dish.leave("a")
    assert await nothing_arrives(dish)


async def test_dish_discards_when_its_queue_is_full(ctx):
    dish, radio, _ = await pair(ctx, zmtp.DISH, zmtp.RADIO, bopts=opts(rcvhwm=2))
    dish.join("g")
    await until(lambda: any(radio._joined.values()))
    for i in range(5):
        await radio.send(str(i).encode(), group="g")
    await asyncio.sleep(0.2)
    assert [await recv(dish), await recv(dish)] == [[b"0"], [b"1"]]
    assert await nothing_arrives(dish)
    await radio.send(b"later", group="g")  # the radio was not slowed down, nor cut off
    assert await recv(dish) == [b"later"]


async def test_dish_disconnects_a_radio_that_sends_no_group(ctx):
    dish = ctx.socket(zmtp.DISH, opts())
    ep = await dish.bind("tcp://127.0.0.1:0")
    peer = await raw_peer(ep, "RADIO")
    peer.conn.send_message([b"no-group"])
    await peer.flush()
    await peer.closed_by_peer()
    assert await nothing_arrives(dish)


async def test_radio_rejoins_after_reconnect(ctx):
    radio, dish, _ = await pair(ctx, zmtp.RADIO, zmtp.DISH, copts=opts(reconnect_ivl=0.05))
    dish.join("g")
    await until(lambda: any(radio._joined.values()))
    for pipe in list(radio.peers):
        pipe.engine.close()
    await until(lambda: not any(radio._joined.values()))
    await until(lambda: any(radio._joined.values()))  # the DISH joined again on its new connection
    await radio.send(b"again", group="g")
    assert await recv(dish) == [b"again"]


async def test_radio_and_dish_directions(ctx):
    radio = ctx.socket(zmtp.RADIO, opts())
    dish = ctx.socket(zmtp.DISH, opts())
    with pytest.raises(zmtp.NotSupported):
        await radio.recv()
    with pytest.raises(zmtp.NotSupported):
        await dish.send(b"x")
    with pytest.raises(ValueError, match="zero octet"):
        await radio.send(b"x", group=b"a\x00")


async def test_radio_without_group_uses_the_empty_group(ctx):
    dish, radio, _ = await pair(ctx, zmtp.DISH, zmtp.RADIO)
    dish.join("")
    await until(lambda: any(radio._joined.values()))
    await radio.send_multipart([b"plain"])
    msg = await asyncio.wait_for(dish.recv_message(), T)
    assert (msg.frames, msg.group) == ([b"plain"], b"")


# -- multipart refusal (RFC 47, 48, 49: MUST NOT send multipart messages) ---------------------


@pytest.mark.parametrize("socket_type", ["CLIENT", "SERVER", "RADIO", "SCATTER"])
async def test_multipart_send_refused(ctx, socket_type):
    sock = ctx.socket(socket_type, opts())
    with pytest.raises(zmtp.NotSupported, match="multipart"):
        await sock.send_multipart([b"a", b"b"])
    with pytest.raises(zmtp.NotSupported, match="multipart"):
        await sock.send_many([[b"ok"], [b"a", b"b"]])


@pytest.mark.parametrize(
    ("socket_type", "peer_type"), [("SERVER", "CLIENT"), ("CLIENT", "SERVER"), ("GATHER", "SCATTER")]
)
async def test_multipart_received_is_discarded_whole(ctx, socket_type, peer_type):
    sock = ctx.socket(socket_type, opts())
    ep = await sock.bind("tcp://127.0.0.1:0")
    peer = await raw_peer(ep, peer_type)
    peer.conn.send_message([b"part1", b"part2"])
    peer.conn.send_message([b"single"])
    await peer.flush()
    assert await recv(sock) == [b"single"]
    assert await nothing_arrives(sock)
    assert len(sock.peers) == 1  # the peer is not disconnected for it
    peer.close()


# -- CLIENT / SERVER ---------------------------------------------------------------------


async def test_server_routes_replies_by_routing_id(ctx):
    server = ctx.socket(zmtp.SERVER, opts())
    ep = await server.bind("tcp://127.0.0.1:0")
    clients = [ctx.socket(zmtp.CLIENT, opts()) for _ in range(3)]
    for c in clients:
        await c.connect(ep)
    for i, c in enumerate(clients):
        await c.send(f"from-{i}".encode())
    ids = {}
    for _ in clients:
        msg = await asyncio.wait_for(server.recv_message(), T)
        ids[msg.frames[0]] = msg.routing_id
    assert len(set(ids.values())) == 3
    assert all(isinstance(r, int) and 0 < r <= 0xFFFFFFFF for r in ids.values())
    for i in (2, 0, 1):
        await server.send(f"to-{i}".encode(), routing_id=ids[f"from-{i}".encode()])
    for i, c in enumerate(clients):
        assert await recv(c) == [f"to-{i}".encode()]
        assert await nothing_arrives(c, 0.05)


async def test_server_send_needs_a_known_routing_id(ctx):
    server, client, _ = await pair(ctx, zmtp.SERVER, zmtp.CLIENT)
    await client.send(b"hi")
    msg = await asyncio.wait_for(server.recv_message(), T)
    with pytest.raises(zmtp.HostUnreachable):
        await server.send(b"x", routing_id=(msg.routing_id + 1) & 0xFFFFFFFF or 1)
    with pytest.raises(zmtp.InvalidState, match="routing_id"):
        await server.send(b"x")
    with pytest.raises(zmtp.InvalidState, match="routing_id"):
        await server.send_multipart([b"x"])
    await server.send(b"ok", routing_id=msg.routing_id)
    assert await recv(client) == [b"ok"]


async def test_server_never_blocks_on_a_full_queue(ctx):
    # A SERVER that connected keeps the queue while its CLIENT is away; when it fills, send fails at once.
    client = ctx.socket(zmtp.CLIENT, opts())
    ep = await client.bind("tcp://127.0.0.1:0")
    server = ctx.socket(zmtp.SERVER, opts(sndhwm=1, reconnect_ivl=10))
    await server.connect(ep)
    await client.send(b"hello")
    rid = (await asyncio.wait_for(server.recv_message(), T)).routing_id
    await client.close()
    await until(lambda: not server.peers)
    await asyncio.wait_for(server.send(b"queued", routing_id=rid), 0.5)
    with pytest.raises(zmtp.Again):
        await asyncio.wait_for(server.send(b"full", routing_id=rid), 0.5)


async def test_server_discards_the_queue_of_a_peer_that_left(ctx):
    server, client, _ = await pair(ctx, zmtp.SERVER, zmtp.CLIENT)
    await client.send(b"first")
    assert await recv(server) == [b"first"]
    await client.send(b"unread")
    await asyncio.sleep(0.1)  # it has arrived
    await client.close()
    await until(lambda: not server.peers)
    assert await nothing_arrives(server)


async def test_client_round_robin_and_fair_queue(ctx):
    s1, s2 = ctx.socket(zmtp.SERVER, opts()), ctx.socket(zmtp.SERVER, opts())
    client = ctx.socket(zmtp.CLIENT, opts())
    for s in (s1, s2):
        await client.connect(await s.bind("tcp://127.0.0.1:0"))
    await until(lambda: len(client.peers) == 2)
    for body in (b"a", b"b", b"c", b"d"):
        await client.send(body)
    got1, got2 = [await recv(s1), await recv(s1)], [await recv(s2), await recv(s2)]
    assert sorted(got1 + got2) == [[b"a"], [b"b"], [b"c"], [b"d"]]
    assert {got1[0][0], got1[1][0]} in ({b"a", b"c"}, {b"b", b"d"})


# -- SCATTER / GATHER --------------------------------------------------------------------


async def test_scatter_round_robin(ctx):
    g1, g2 = ctx.socket(zmtp.GATHER, opts()), ctx.socket(zmtp.GATHER, opts())
    scatter = ctx.socket(zmtp.SCATTER, opts())
    for g in (g1, g2):
        await scatter.connect(await g.bind("tcp://127.0.0.1:0"))
    await until(lambda: len(scatter.peers) == 2)
    for i in range(6):
        await scatter.send(str(i).encode())
    a = [(await recv(g1))[0] for _ in range(3)]
    b = [(await recv(g2))[0] for _ in range(3)]
    assert sorted([a, b]) == [[b"0", b"2", b"4"], [b"1", b"3", b"5"]]


async def test_gather_fair_queues(ctx):
    gather = ctx.socket(zmtp.GATHER, opts())
    ep = await gather.bind("tcp://127.0.0.1:0")
    s1, s2 = ctx.socket(zmtp.SCATTER, opts()), ctx.socket(zmtp.SCATTER, opts())
    for s in (s1, s2):
        await s.connect(ep)
    await until(lambda: len(gather.peers) == 2)
    for i in range(3):
        await s1.send(b"a%d" % i)
    for i in range(3):
        await s2.send(b"b%d" % i)
    await asyncio.sleep(0.2)  # both backlogs are in
    got = [(await recv(gather))[0] for _ in range(6)]
    assert [m[:1] for m in got] in ([b"a", b"b"] * 3, [b"b", b"a"] * 3)


async def test_scatter_waits_without_peers_and_gather_cannot_send(ctx):
    scatter = ctx.socket(zmtp.SCATTER, opts())
    gather = ctx.socket(zmtp.GATHER, opts())
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(scatter.send(b"nobody"), 0.1)  # "SHALL NOT discard messages that it cannot queue"
    with pytest.raises(zmtp.NotSupported):
        await scatter.recv()
    with pytest.raises(zmtp.NotSupported):
        await gather.send(b"x")
