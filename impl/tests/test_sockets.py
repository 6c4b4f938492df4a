"""Socket semantics of the asyncio layer (RFC 28-31), impl against impl."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

import zmtp
from zmtp.connection import Connection
from zmtp.events import Message, Messages

from .rawpeer import RawPeer

T = 5.0


def opts(**kw) -> zmtp.SocketOptions:
    return zmtp.SocketOptions(linger=0, **kw)


async def recv(sock, timeout: float = T):
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


async def until_connected(sock, n: int = 1) -> None:
    async with asyncio.timeout(T):
        while len(sock.peers) < n:
            await asyncio.sleep(0.005)


# -- REQ / REP -------------------------------------------------------------------


async def test_req_rep_strict_alternation(ctx):
    rep, req, _ = await pair(ctx, zmtp.REP, zmtp.REQ)
    with pytest.raises(zmtp.InvalidState, match="send a request"):
        await req.recv_multipart()
    await req.send(b"one")
    with pytest.raises(zmtp.InvalidState, match="receive the reply"):
        await req.send(b"two")
    assert await recv(rep) == [b"one"]
    with pytest.raises(zmtp.InvalidState, match="send the reply"):
        await rep.recv_multipart()
    await rep.send(b"ONE")
    assert await recv(req) == [b"ONE"]
    with pytest.raises(zmtp.InvalidState, match="receive a request"):
        await rep.send(b"unasked")


async def test_rep_keeps_the_envelope(ctx):
    rep, dealer, _ = await pair(ctx, zmtp.REP, zmtp.DEALER)
    await dealer.send_multipart([b"hop2", b"hop1", b"", b"body", b"more"])
    assert await recv(rep) == [b"body", b"more"]
    await rep.send_multipart([b"reply"])
    assert await recv(dealer) == [b"hop2", b"hop1", b"", b"reply"]


async def test_rep_discards_requests_without_delimiter(ctx):
    rep, dealer, _ = await pair(ctx, zmtp.REP, zmtp.DEALER)
    await dealer.send_multipart([b"no-delimiter"])
    await dealer.send_multipart([b"", b"good"])
    assert await recv(rep) == [b"good"]


async def test_req_discards_replies_without_delimiter(ctx):
    router, req, _ = await pair(ctx, zmtp.ROUTER, zmtp.REQ)
    await req.send(b"q")
    rid, _delim, _body = await recv(router)
    await router.send_multipart([rid, b"bad-no-delimiter"])
    await router.send_multipart([rid, b"", b"good"])
    assert await recv(req) == [b"good"]


async def test_req_round_robin_and_replies_only_from_that_peer(ctx):
    r1 = ctx.socket(zmtp.ROUTER, opts())
    r2 = ctx.socket(zmtp.ROUTER, opts())
    req = ctx.socket(zmtp.REQ, opts(routing_id=b"req"))
    await req.connect(await r1.bind("tcp://127.0.0.1:0"))
    await req.connect(await r2.bind("tcp://127.0.0.1:0"))
    await until_connected(req, 2)
    await until_connected(r2)
    await req.send(b"first")
    rid1, _, _ = await recv(r1)
    assert rid1 == b"req"
    # A well-formed reply from the other peer is dropped: REQ only listens to r1 now.
    await r2.send_multipart([b"req", b"", b"not-from-r1"])
    await asyncio.sleep(0.05)
    await r1.send_multipart([rid1, b"", b"from-r1"])
    assert await recv(req) == [b"from-r1"]
    await req.send(b"second")
    _rid2, _, body = await recv(r2)
    assert body == b"second"


async def test_req_send_given_up_without_a_peer_leaves_it_free_to_send(ctx):
    # RFC 28 lets a REQ with no peer block; a send abandoned then was never a request.
    req = ctx.socket(zmtp.REQ, opts())
    ep = await req.bind("tcp://127.0.0.1:0")  # bound, nobody connected: no pipe to send to
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(req.send(b"abandoned"), 0.1)
    rep = ctx.socket(zmtp.REP, opts())
    await rep.connect(ep)
    await until_connected(req)
    await req.send(b"kept")
    assert await recv(rep) == [b"kept"]
    await rep.send(b"answer")
    assert await recv(req) == [b"answer"]


async def test_req_relaxed_and_correlate(ctx):
    router = ctx.socket(zmtp.ROUTER, opts())
    req = ctx.socket(zmtp.REQ, opts(req_relaxed=True, req_correlate=True))
    await req.connect(await router.bind("tcp://127.0.0.1:0"))
    await req.send(b"a")
    rid, reqid_a, _, _ = await recv(router)
    await req.send(b"b")  # relaxed: allowed before the reply
    rid, reqid_b, _, _ = await recv(router)
    assert len(reqid_a) == 4 and reqid_a != reqid_b
    await router.send_multipart([rid, reqid_a, b"", b"stale"])
    await router.send_multipart([rid, reqid_b, b"", b"fresh"])
    assert await recv(req) == [b"fresh"]


# -- ROUTER -----------------------------------------------------------------------


async def test_router_generates_ids_and_honours_announced_ones(ctx):
    router = ctx.socket(zmtp.ROUTER, opts())
    ep = await router.bind("tcp://127.0.0.1:0")
    anon = ctx.socket(zmtp.DEALER, opts())
    named = ctx.socket(zmtp.DEALER, opts(routing_id=b"named"))
    await anon.connect(ep)
    await named.connect(ep)
    await anon.send(b"from-anon")
    await named.send(b"from-named")
    got = {}
    for _ in range(2):
        rid, body = await recv(router)
        got[body] = rid
    assert got[b"from-named"] == b"named"
    generated = got[b"from-anon"]
    assert len(generated) == 5 and generated[0] == 0
    await router.send_multipart([generated, b"to-anon"])
    await router.send_multipart([b"named", b"to-named"])
    assert await recv(anon) == [b"to-anon"]
    assert await recv(named) == [b"to-named"]


async def test_router_mandatory_raises_on_unknown_id(ctx):
    router = ctx.socket(zmtp.ROUTER, opts(router_mandatory=True))
    await router.bind("tcp://127.0.0.1:0")
    with pytest.raises(zmtp.HostUnreachable, match="nobody"):
        await router.send_multipart([b"nobody", b"x"])


async def test_router_drops_unknown_id_silently_by_default(ctx):
    router = ctx.socket(zmtp.ROUTER, opts())
    await router.bind("tcp://127.0.0.1:0")
    await router.send_multipart([b"nobody", b"x"])  # no error


async def test_router_refuses_duplicate_id_unless_handover(ctx):
    for handover in (False, True):
        router = ctx.socket(zmtp.ROUTER, opts(router_handover=handover))
        ep = await router.bind("tcp://127.0.0.1:0")
        first = ctx.socket(zmtp.DEALER, opts(routing_id=b"dup", reconnect_ivl=0))
        await first.connect(ep)
        await first.send(b"1")
        assert await recv(router) == [b"dup", b"1"]
        second = ctx.socket(zmtp.DEALER, opts(routing_id=b"dup", reconnect_ivl=0))
        await second.connect(ep)
        await asyncio.sleep(0.2)
        await router.send_multipart([b"dup", b"who"])
        winner, loser = (second, first) if handover else (first, second)
        assert await recv(winner) == [b"who"]
        assert await nothing_arrives(loser)
        for s in (router, first, second):
            await s.close()


# -- PUB / SUB ---------------------------------------------------------------------


async def subscribed(pub, sub, topic_probe: bytes) -> None:
    """Publish `topic_probe` until the subscriber sees it (the slow-joiner dance)."""
    async with asyncio.timeout(T):
        while True:
            await pub.send(topic_probe)
            try:
                got = await asyncio.wait_for(sub.recv_multipart(), 0.02)
            except TimeoutError:
                continue
            assert got == [topic_probe]
            return


async def drain(sock) -> list[list[bytes]]:
    out = []
    while not await nothing_arrives(sock, 0.1):
        pass
    return out


async def test_pub_sub_prefix_matching(ctx):
    pub, sub, _ = await pair(ctx, zmtp.PUB, zmtp.SUB)
    sub.subscribe(b"weather.")
    await subscribed(pub, sub, b"weather.probe")
    for topic in (b"weather.paris", b"news.paris", b"weather", b"weather.oslo"):
        await pub.send_multipart([topic, b"payload"])
    assert await recv(sub) == [b"weather.paris", b"payload"]
    assert await recv(sub) == [b"weather.oslo", b"payload"]
    assert await nothing_arrives(sub)


async def test_subscriptions_are_counted(ctx):
    pub, sub, _ = await pair(ctx, zmtp.PUB, zmtp.SUB)
    sub.subscribe(b"A")
    sub.subscribe(b"A")
    await subscribed(pub, sub, b"A-probe")
    sub.unsubscribe(b"A")
    await asyncio.sleep(0.1)
    await pub.send(b"A-still")
    assert await recv(sub) == [b"A-still"]
    sub.unsubscribe(b"A")
    sub.subscribe(b"Z")
    await subscribed(pub, sub, b"Z-probe")  # CANCEL A was sent before SUBSCRIBE Z
    await pub.send(b"A-gone")
    assert await nothing_arrives(sub)


async def test_empty_subscription_matches_everything(ctx):
    pub, sub, _ = await pair(ctx, zmtp.PUB, zmtp.SUB)
    sub.subscribe(b"")
    await subscribed(pub, sub, b"anything")
    await pub.send(b"")
    assert await recv(sub) == [b""]


async def test_unsubscribing_from_everything_filters_again(ctx):
    # Subscribed to "", a SUB reads its queue without judging each message; once "" is
    # cancelled, what is already queued and what comes next is filtered by the topics left.
    pub, sub, _ = await pair(ctx, zmtp.PUB, zmtp.SUB)
    sub.subscribe(b"")
    sub.subscribe(b"A")
    await subscribed(pub, sub, b"probe")
    await drain(sub)
    await pub.send_many([[b"A1"], [b"B1"]])
    assert await recv(sub) == [b"A1"]
    assert await recv(sub) == [b"B1"]
    await pub.send_many([[b"B2"], [b"A2"], [b"B3"]])
    await asyncio.sleep(0.2)  # queued at the SUB before the cancel below
    sub.unsubscribe(b"")
    got = await asyncio.wait_for(sub.recv_many(10), T)
    assert got == [[b"A2"]]
    sub.subscribe(b"")
    await subscribed(pub, sub, b"B-probe")  # unfiltered again


async def test_pub_send_many_gives_each_subscriber_its_own_share_in_order(ctx):
    pub = ctx.socket(zmtp.PUB, opts())
    ep = await pub.bind("tcp://127.0.0.1:0")
    # An XSUB does not filter again what arrives: it reads what the PUB chose to send it.
    only_a, every = ctx.socket(zmtp.XSUB, opts()), ctx.socket(zmtp.SUB, opts())
    every.subscribe(b"")
    for sub in (only_a, every):
        await sub.connect(ep)
    await only_a.send(b"\x01A")
    await subscribed(pub, only_a, b"A-probe")
    await subscribed(pub, every, b"A-probe")
    for sub in (only_a, every):
        await drain(sub)
    batch = [[b"A%d" % i, b"body"] if i % 3 else [b"B%d" % i] for i in range(300)]
    assert await pub.send_many(batch) == 300
    for sub, expected in ((only_a, [m for m in batch if m[0].startswith(b"A")]), (every, batch)):
        got = []
        while len(got) < len(expected):
            got += await asyncio.wait_for(sub.recv_many(1000), T)
        assert got == expected
        assert await nothing_arrives(sub)
    with pytest.raises(ValueError, match="at least one frame"):
        await pub.send_many([[b"ok"], []])


async def test_pub_send_many_honours_the_ignore_subscriptions_knob(ctx):
    # An XSUB does not filter what arrives, so what the PUB chose to send is what it reads.
    pub = ctx.socket(zmtp.PUB, opts(bugs=zmtp.ProtocolBugs(pub_ignore_subscriptions=True)))
    xsub = ctx.socket(zmtp.XSUB, opts())
    await xsub.connect(await pub.bind("tcp://127.0.0.1:0"))
    await xsub.send(b"\x01A")
    await subscribed(pub, xsub, b"A-probe")
    await drain(xsub)
    await pub.send_many([[b"B-not-asked-for"], [b"A-asked-for"]])
    assert await recv(xsub) == [b"B-not-asked-for"]
    assert await recv(xsub) == [b"A-asked-for"]


async def test_pub_send_many_drops_what_a_full_subscriber_cannot_take(ctx):
    registry = CollectorRegistry()
    mctx = zmtp.Context(metrics=zmtp.Metrics(registry))
    pub = mctx.socket(zmtp.PUB, opts(sndhwm=5))
    sub = mctx.socket(zmtp.SUB, opts(rcvhwm=5, recv_buffer_size=4096))
    await sub.connect(await pub.bind("tcp://127.0.0.1:0"))
    sub.subscribe(b"")
    await subscribed(pub, sub, b"probe")
    await drain(sub)
    assert await pub.send_many([[b"x" * 60000]] * 2000) == 2000  # never waits
    received = 0
    while not await nothing_arrives(sub, 0.3):
        received += 1
    assert 0 < received < 2000
    dropped = {
        kind: registry.get_sample_value("zmtp_messages_dropped_total", {"socket_type": kind, "reason": "hwm"}) or 0
        for kind in ("PUB", "SUB")
    }
    assert dropped["PUB"] > 0  # the publisher's queue for this peer was full
    assert received + dropped["PUB"] + dropped["SUB"] == 2000
    await mctx.term()


async def test_xpub_sees_subscriptions_and_their_end(ctx):
    xpub, sub, _ = await pair(ctx, zmtp.XPUB, zmtp.SUB)
    sub.subscribe(b"T")
    assert await recv(xpub) == [b"\x01T"]
    sub2 = ctx.socket(zmtp.SUB, opts())
    await sub2.connect(xpub.last_endpoint)
    sub2.subscribe(b"T")  # not new: only xpub_verbose would report it
    await until_connected(xpub, 2)
    assert await nothing_arrives(xpub)
    sub.unsubscribe(b"T")
    assert await nothing_arrives(xpub)  # sub2 still holds T
    await sub2.close()  # the last holder leaves: XPUB reports the topic gone
    assert await recv(xpub) == [b"\x00T"]


async def test_xpub_verbose_reports_every_subscribe(ctx):
    xpub, sub, _ = await pair(ctx, zmtp.XPUB, zmtp.XSUB, bopts=opts(xpub_verbose=True))
    await until_connected(sub)  # before that, XSUB keeps one copy to replay
    await sub.send(b"\x01T")
    await sub.send(b"\x01T")
    assert await recv(xpub) == [b"\x01T"]
    assert await recv(xpub) == [b"\x01T"]


async def test_xsub_sends_plain_messages_upstream(ctx):
    xpub, xsub, _ = await pair(ctx, zmtp.XPUB, zmtp.XSUB)
    await until_connected(xsub)
    await xsub.send(b"\x02hello-upstream")
    assert await recv(xpub) == [b"\x02hello-upstream"]


async def test_xsub_queues_upstream_messages_until_the_publisher_is_up(ctx):
    xpub = ctx.socket(zmtp.XPUB, opts())
    ep = await xpub.bind("tcp://127.0.0.1:0")
    await xpub.close()
    xsub = ctx.socket(zmtp.XSUB, opts())
    await xsub.connect(ep)  # nobody there yet: the message waits in the pipe
    await xsub.send(b"upstream")
    xpub = ctx.socket(zmtp.XPUB, opts())
    await xpub.bind(ep)
    assert await recv(xpub) == [b"upstream"]


async def test_sub_cannot_send_and_pub_cannot_recv(ctx):
    pub = ctx.socket(zmtp.PUB, opts())
    sub = ctx.socket(zmtp.SUB, opts())
    with pytest.raises(zmtp.NotSupported):
        await sub.send(b"x")
    with pytest.raises(zmtp.NotSupported):
        await pub.recv_multipart()


# -- PUSH / PULL / PAIR -------------------------------------------------------------


async def test_push_round_robin(ctx):
    push = ctx.socket(zmtp.PUSH, opts())
    pulls = [ctx.socket(zmtp.PULL, opts()) for _ in range(3)]
    for p in pulls:
        await push.connect(await p.bind("tcp://127.0.0.1:0"))
    await until_connected(push, 3)
    for i in range(30):
        await push.send(b"%d" % i)
    counts = Counter()
    for i, p in enumerate(pulls):
        for _ in range(10):
            await recv(p)
            counts[i] += 1
    assert counts == {0: 10, 1: 10, 2: 10}


async def test_pull_fair_queues(ctx):
    pull = ctx.socket(zmtp.PULL, opts())
    ep = await pull.bind("tcp://127.0.0.1:0")
    a = ctx.socket(zmtp.PUSH, opts())
    b = ctx.socket(zmtp.PUSH, opts())
    await a.connect(ep)
    await b.connect(ep)
    await until_connected(pull, 2)
    for i in range(20):
        await a.send(b"a%d" % i)
        await b.send(b"b%d" % i)
    await asyncio.sleep(0.2)  # both queues full before the first read
    got = [(await recv(pull))[0][:1] for _ in range(20)]
    assert got.count(b"a") == 10 and got.count(b"b") == 10


async def test_pair_refuses_a_second_peer(ctx):
    p1, p2, ep = await pair(ctx, zmtp.PAIR, zmtp.PAIR)
    intruder = ctx.socket(zmtp.PAIR, opts(reconnect_ivl=0))
    await intruder.connect(ep)
    await p2.send(b"hi")
    assert await recv(p1) == [b"hi"]
    await asyncio.sleep(0.2)
    await p1.send(b"to-my-peer")
    assert await recv(p2) == [b"to-my-peer"]
    assert await nothing_arrives(intruder)


# -- queues, reconnects, lifecycle ----------------------------------------------------


async def test_send_before_the_peer_exists_is_queued(ctx):
    push = ctx.socket(zmtp.PUSH, opts())
    pull = ctx.socket(zmtp.PULL, opts())
    ep = await pull.bind("tcp://127.0.0.1:0")
    await pull.close()
    await push.connect(ep)
    for i in range(5):
        await push.send(b"%d" % i)
    pull = ctx.socket(zmtp.PULL, opts())
    await pull.bind(ep)
    assert [(await recv(pull))[0] for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]


async def test_sndhwm_blocks_push(ctx):
    push = ctx.socket(zmtp.PUSH, opts(sndhwm=10))
    await push.connect("tcp://127.0.0.1:1")  # nobody there: the pipe fills
    for i in range(10):
        await push.send(b"%d" % i)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(push.send(b"one-too-many"), 0.2)


async def test_pub_drops_for_a_slow_subscriber_at_hwm(ctx):
    pub = ctx.socket(zmtp.PUB, opts(sndhwm=5))
    sub = ctx.socket(zmtp.SUB, opts(rcvhwm=5, recv_buffer_size=4096))
    await sub.connect(await pub.bind("tcp://127.0.0.1:0"))
    sub.subscribe(b"")
    await subscribed(pub, sub, b"probe")
    payload = b"x" * 60000
    for _ in range(2000):
        await pub.send(payload)  # never blocks
    received = 0
    while not await nothing_arrives(sub, 0.3):
        received += 1
    assert 0 < received < 2000


@pytest.mark.parametrize("kind", [zmtp.SUB, zmtp.XSUB])
async def test_subscriber_discards_what_its_full_queue_cannot_hold(ctx, kind):
    # RFC 29: a SUB/XSUB whose queue for a publisher is full discards what arrives. The PUB's
    # own queue holds every message, so a subscriber that pushed back instead would, once its
    # application reads, receive them all.
    pub = ctx.socket(zmtp.PUB, opts(sndhwm=1000))
    sub = ctx.socket(kind, opts(rcvhwm=5))
    await sub.connect(await pub.bind("tcp://127.0.0.1:0"))
    if kind == zmtp.SUB:
        sub.subscribe(b"")
    else:
        await sub.send(b"\x01")
    await subscribed(pub, sub, b"probe")
    while not await nothing_arrives(sub, 0.1):
        pass  # probes sent before the first one arrived
    for i in range(500):
        await pub.send(b"%d " % i + b"x" * 60000)
    await asyncio.sleep(0.5)  # the application reads nothing meanwhile
    numbers = []
    while True:
        try:
            got = await recv(sub, 0.3)
        except TimeoutError:
            break
        numbers.append(int(got[0].split(b" ")[0]))
    assert numbers[:5] == [0, 1, 2, 3, 4]
    assert numbers == sorted(numbers) and len(numbers) < 500


async def test_reconnect_after_the_server_restarts(ctx):
    pull = ctx.socket(zmtp.PULL, opts())
    ep = await pull.bind("tcp://127.0.0.1:0")
    push = ctx.socket(zmtp.PUSH, opts(reconnect_ivl=0.02, reconnect_ivl_max=0.2))
    await push.connect(ep)
    await push.send(b"before")
    assert await recv(pull) == [b"before"]
    await pull.close()
    pull = ctx.socket(zmtp.PULL, opts())
    await pull.bind(ep)
    await push.send(b"after")
    assert await recv(pull) == [b"after"]


async def test_linger_flushes_queued_messages_on_close(ctx):
    # What close flushes is judged by a raw PULL reading the wire: a zmtp PULL discards
    # what it has not read when the connection ends (RFC 30), and close ends it.
    push = ctx.socket(zmtp.PUSH, zmtp.SocketOptions(linger=5.0))
    ep = await push.bind("tcp://127.0.0.1:0")
    peer = await RawPeer.open(ep, Connection("PULL", as_server=False))
    await peer.handshake()
    for i in range(500):
        await push.send(b"m%d" % i + b"." * 1000)

    async def read_to_the_end() -> None:
        with contextlib.suppress(ConnectionResetError):
            while True:
                await peer.pump_once()

    reader = asyncio.create_task(read_to_the_end())
    await push.close()
    await asyncio.wait_for(reader, T)
    got = [m for ev in peer.events if isinstance(ev, Messages) for m in ev.messages]
    got += [ev.frames for ev in peer.events if isinstance(ev, Message)]
    assert len(got) == 500
    for i, frames in enumerate(got):
        assert frames[0].startswith(b"m%d." % i)


@pytest.mark.parametrize(
    ("receiver", "sender"),
    [(zmtp.PULL, zmtp.PUSH), (zmtp.DEALER, zmtp.DEALER), (zmtp.PAIR, zmtp.PAIR), (zmtp.ROUTER, zmtp.DEALER)],
)
async def test_unread_messages_of_a_peer_that_left_are_discarded(ctx, receiver, sender):
    # "If this peer disconnects, the socket SHALL destroy its double queue and SHALL discard any
    # messages it contains" (RFC 28-31): the incoming half too.
    b, c, _ = await pair(ctx, receiver, sender)
    await until_connected(b)
    for body in (b"old-1", b"old-2"):
        await c.send(body)
    async with asyncio.timeout(T):
        while not any(p.inbound for p in b.peers):  # they have arrived, unread
            await asyncio.sleep(0.005)
    await c.close()
    async with asyncio.timeout(T):
        while b.peers:
            await asyncio.sleep(0.005)
    assert await nothing_arrives(b)
    c2 = ctx.socket(sender, opts())
    await c2.connect(b.last_endpoint)
    await c2.send(b"fresh")
    assert (await recv(b))[-1] == b"fresh"


async def test_a_connected_socket_discards_what_the_gone_peer_sent_and_keeps_its_queue(ctx):
    # A pipe made by connect outlives the connection (RFC 30: "maintain the queue whether or not the
    # connection is established"), but not the messages of the peer that left.
    push = ctx.socket(zmtp.PUSH, opts())
    ep = await push.bind("tcp://127.0.0.1:0")
    pull = ctx.socket(zmtp.PULL, opts(reconnect_ivl=0.02))
    await pull.connect(ep)
    await until_connected(pull)
    await push.send(b"old")
    async with asyncio.timeout(T):
        while not any(p.inbound for p in pull.peers):
            await asyncio.sleep(0.005)
    await push.close()
    async with asyncio.timeout(T):
        while pull.peers:  # the connection has ended (the pipe stays, not live)
            await asyncio.sleep(0.005)
    assert await nothing_arrives(pull, 0.3)
    push = ctx.socket(zmtp.PUSH, opts())
    await push.bind(ep)
    await push.send(b"fresh")
    assert await recv(pull) == [b"fresh"]


async def test_closed_socket_raises(ctx):
    s = ctx.socket(zmtp.PULL, opts())
    await s.close()
    with pytest.raises(zmtp.SocketClosed):
        await s.recv_multipart()


async def test_recv_frame_by_frame_and_batches(ctx):
    pull, push, _ = await pair(ctx, zmtp.PULL, zmtp.PUSH)
    await push.send_multipart([b"a", b"b"])
    assert await asyncio.wait_for(pull.recv(), T) == b"a"
    assert await asyncio.wait_for(pull.recv(), T) == b"b"
    n = await push.send_many([[b"%d" % i] for i in range(100)])
    assert n == 100
    got = []
    while len(got) < 100:
        got += await asyncio.wait_for(pull.recv_many(64), T)
    assert got == [[b"%d" % i] for i in range(100)]


async def test_socket_type_names_as_strings(ctx):
    s = ctx.socket("dealer")
    assert s.type is zmtp.DEALER
    with pytest.raises(ValueError, match="unknown socket type"):
        ctx.socket("CLIENTX")


async def test_ipc_transport(ctx, tmp_path):
    pull = ctx.socket(zmtp.PULL, opts())
    push = ctx.socket(zmtp.PUSH, opts())
    ep = await pull.bind(f"ipc://{tmp_path}/sock")
    assert ep == f"ipc://{tmp_path}/sock"
    await push.connect(ep)
    await push.send(b"over-ipc")
    assert await recv(pull) == [b"over-ipc"]


async def test_send_many_keeps_pattern_rules(ctx):
    rep, req, _ = await pair(ctx, zmtp.REP, zmtp.REQ)
    assert await req.send_many([[b"only"]]) == 1
    assert await recv(rep) == [b"only"]  # the REQ delimiter was added and stripped
    await rep.send(b"ok")
    assert await recv(req) == [b"ok"]
    with pytest.raises(zmtp.InvalidState):
        await req.send_many([[b"a"], [b"b"]])  # strict alternation still holds


# -- batches and the transport's push-back ------------------------------------------


class CountingEngine:
    """Stands in for an Engine: records how messages reach it, and pauses like a full transport."""

    def __init__(self, pause_after_bytes: int) -> None:
        self.ready, self.paused = True, False
        self.calls: list[int] = []  # messages per call
        self.written = 0
        self.pause_after = pause_after_bytes

    def _take(self, messages) -> None:
        self.calls.append(len(messages))
        self.written += sum(len(f) for m in messages for f in m)
        self.paused = self.written >= self.pause_after

    def write_message(self, frames) -> None:
        self._take([frames])

    def write_messages(self, messages) -> None:
        self._take(messages)


async def test_large_messages_reach_the_engine_in_slices_it_can_push_back(ctx):
    from zmtp.pipe import FLUSH_BYTES, FLUSH_MESSAGES, Pipe

    sock = ctx.socket(zmtp.PUSH, opts(sndhwm=1000))
    pipe = Pipe(sock, "tcp://127.0.0.1:1", persistent=True)
    pipe.engine = engine = CountingEngine(pause_after_bytes=4 << 20)  # type: ignore[assignment]
    big = [[b"x" * (1 << 20)] for _ in range(64)]
    assert pipe.send_many(big) == 64
    # Once the engine pushes back, the rest waits in the pipe instead of the transport.
    assert engine.written <= (4 << 20) + FLUSH_BYTES and len(pipe.pending) >= 64 - 5
    assert max(engine.calls) * (1 << 20) <= max(FLUSH_BYTES, 1 << 20)
    engine.paused, engine.pause_after = False, 1 << 40
    pipe.flush_pending()
    assert not pipe.pending and engine.written == 64 << 20

    small = CountingEngine(pause_after_bytes=1 << 40)
    pipe.engine = small  # type: ignore[assignment]
    assert pipe.send_many([[b"s"]] * 200) == 200
    assert small.calls[0] == FLUSH_MESSAGES and sum(small.calls) == 200
    await sock.close()


# -- frame by frame ------------------------------------------------------------


async def test_frames_sent_with_more_are_held_until_the_final_frame(ctx):
    """RFC 37: a peer queues all frames of a message in memory until the final frame is sent."""
    b, c, _ = await pair(ctx, zmtp.PAIR, zmtp.PAIR)
    await until_connected(c)
    await c.send(b"one", more=True)
    await c.send(b"two", more=True)
    assert await nothing_arrives(b)
    await c.send(b"three")
    assert await recv(b) == [b"one", b"two", b"three"]
    await c.send(b"head", more=True)
    await c.send_multipart([b"rest", b"end"])  # send_multipart finishes the held message too
    assert await recv(b) == [b"head", b"rest", b"end"]


async def test_send_many_refuses_to_start_while_a_message_is_half_sent(ctx):
    _b, c, _ = await pair(ctx, zmtp.PAIR, zmtp.PAIR)
    await c.send(b"held", more=True)
    with pytest.raises(ValueError, match="wait for their final frame"):
        await c.send_many([[b"x"]])


async def test_a_single_part_socket_refuses_more(ctx):
    _b, c, _ = await pair(ctx, zmtp.SERVER, zmtp.CLIENT)
    with pytest.raises(zmtp.NotSupported, match="multipart"):
        await c.send(b"x", more=True)
