"""Interop with libzmq (through pyzmq): every valid socket pair, both directions, tcp and ipc."""

from __future__ import annotations

import asyncio

import pytest
import zmq

import zmtp

from .helpers import BOTH_ORDERS
from .sides import ImplSide, LibzmqSide, endpoint_for, recv

pytestmark = pytest.mark.interop

CASES = BOTH_ORDERS  # each valid pair with either type as the binding side
BIG = b"L" * 300  # a long frame in every exchange


async def exchange(binder, btype: str, connecter, ctype: str) -> None:
    """Run a short conversation typical of the pair and check every byte that arrives."""
    roles = {btype: binder, ctype: connecter}
    types = {btype, ctype}
    if types == {"REQ", "REP"} or types == {"REQ", "ROUTER"} or types == {"DEALER", "REP"}:
        client_type = "REQ" if "REQ" in types else "DEALER"
        server_type = "REP" if "REP" in types else "ROUTER"
        client, server = roles[client_type], roles[server_type]
        for i in range(5):
            body = [b"req%d" % i, b"", BIG]
            await client.send_multipart(body if client_type == "REQ" else [b"", *body])
            got = await recv(server)
            if server_type == "ROUTER":
                rid, delim, *rest = got
                assert delim == b"" and rest == body
                await server.send_multipart([rid, b"", b"rep%d" % i])
            else:
                assert got == body
                await server.send_multipart([b"rep%d" % i])
            reply = await recv(client)
            assert reply == ([b"rep%d" % i] if client_type == "REQ" else [b"", b"rep%d" % i])
    elif types == {"DEALER"} or types == {"PAIR"}:
        for i in range(5):
            await connecter.send_multipart([b"c%d" % i, BIG])
            assert await recv(binder) == [b"c%d" % i, BIG]
            await binder.send_multipart([b"b%d" % i, b""])
            assert await recv(connecter) == [b"b%d" % i, b""]
    elif types == {"DEALER", "ROUTER"}:
        dealer, router = roles["DEALER"], roles["ROUTER"]
        for i in range(5):
            await dealer.send_multipart([b"d%d" % i, BIG])
            rid, *rest = await recv(router)
            assert rest == [b"d%d" % i, BIG]
            await router.send_multipart([rid, b"r%d" % i])
            assert await recv(dealer) == [b"r%d" % i]
    elif types == {"ROUTER"}:
        # The binder announced routing id "srv"; the connecter retries until the route exists.
        for _ in range(500):
            try:
                await connecter.send_multipart([b"srv", b"hello", BIG])
                break
            except (zmtp.HostUnreachable, zmq.ZMQError):
                await asyncio.sleep(0.01)
        else:
            raise AssertionError("route to 'srv' never appeared")
        rid, *rest = await recv(binder)
        assert rest == [b"hello", BIG]
        await binder.send_multipart([rid, b"back"])
        assert await recv(connecter) == [b"srv", b"back"]
    elif types == {"PUSH", "PULL"}:
        push, pull = roles["PUSH"], roles["PULL"]
        for i in range(100):
            await push.send_multipart([b"%d" % i, BIG if i % 10 == 0 else b"s"])
        for i in range(100):
            assert await recv(pull) == [b"%d" % i, BIG if i % 10 == 0 else b"s"]
    else:
        pub_type = "XPUB" if "XPUB" in types else "PUB"
        sub_type = "XSUB" if "XSUB" in types else "SUB"
        pub, sub = roles[pub_type], roles[sub_type]
        if sub_type == "SUB":
            sub.subscribe(b"A")
        else:
            await sub.send_multipart([b"\x01A"])
        if pub_type == "XPUB":
            # A bound libzmq SUB only sends subscriptions once the application
            # calls into it again (its pipes attach lazily), so keep poking it.
            for _ in range(500):
                sub.poke()
                try:
                    first = await asyncio.wait_for(pub.recv_multipart(), 0.01)
                    break
                except TimeoutError:
                    continue
            assert first == [b"\x01A"]
        got = None
        for _ in range(500):
            await pub.send_multipart([b"B-not-for-you"])
            await pub.send_multipart([b"A-for-you", BIG])
            try:
                got = await asyncio.wait_for(sub.recv_multipart(), 0.01)
                break
            except TimeoutError:
                continue
        assert got == [b"A-for-you", BIG]
        await pub.send_multipart([b"B-not-for-you"])
        await pub.send_multipart([b"A-last"])
        while (nxt := await recv(sub)) != [b"A-last"]:
            assert nxt == [b"A-for-you", BIG], nxt


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
@pytest.mark.parametrize("impl_binds", [True, False], ids=["impl-binds", "libzmq-binds"])
@pytest.mark.parametrize("btype,ctype", CASES, ids=[f"{a}<-{b}" for a, b in CASES])
async def test_pair(ctx, zctx, btype, ctype, impl_binds, transport):
    bopts = {"routing_id": b"srv"} if btype == "ROUTER" and ctype == "ROUTER" else {}
    copts = {"router_mandatory": True} if btype == "ROUTER" and ctype == "ROUTER" else {}
    if impl_binds:
        binder = ImplSide(ctx, btype, **bopts)
        connecter = LibzmqSide(zctx, ctype, **copts)
    else:
        binder = LibzmqSide(zctx, btype, **bopts)
        connecter = ImplSide(ctx, ctype, **copts)
    endpoint = await binder.bind(endpoint_for(transport))
    await connecter.connect(endpoint)
    try:
        await exchange(binder, btype, connecter, ctype)
    finally:
        await connecter.close()
        await binder.close()


# Large and small frames in every order: the engine reads a large body straight into
# its own buffer, and after one large frame reads the next header alone (engine.get_buffer);
# large bodies are written without joining (engine.flush). None of that may change a byte.
MIXED = [
    [b"\x01" * (1 << 20)],
    [b"small"],
    [b"\x02" * (1 << 20)],
    [b"\x03" * (300 * 1024 + 7)],
    [b"head", b"\x04" * (700 * 1024), b"tail"],
    [b"\x05" * 9],
    [b"\x06" * (256 * 1024)],
    [b"\x07" * (256 * 1024 - 1), b""],
    [b"last"],
]


@pytest.mark.parametrize("sender", ["impl", "libzmq"])
@pytest.mark.parametrize("transport", ["tcp", "ipc"])
async def test_large_and_small_frames_in_every_order(ctx, zctx, sender, transport):
    if sender == "impl":
        rx, tx = LibzmqSide(zctx, "PULL"), ImplSide(ctx, "PUSH")
    else:
        rx, tx = ImplSide(ctx, "PULL"), LibzmqSide(zctx, "PUSH")
    endpoint = await rx.bind(endpoint_for(transport))
    await tx.connect(endpoint)
    try:
        for _ in range(2):
            for msg in MIXED:
                await tx.send_multipart(msg)
        got = [await asyncio.wait_for(rx.recv_multipart(), 10) for _ in range(2 * len(MIXED))]
        assert got == MIXED + MIXED
    finally:
        await tx.close()
        await rx.close()


async def test_large_frames_between_zmtp_sockets(ctx):
    rx, tx = ctx.socket("PULL"), ctx.socket("PUSH")
    ep = await rx.bind("tcp://127.0.0.1:0")
    await tx.connect(ep)
    await tx.send_many(MIXED * 3)
    got = []
    while len(got) < 3 * len(MIXED):
        got += await asyncio.wait_for(rx.recv_many(100), 10)
    assert got == MIXED * 3
    await tx.close()
    await rx.close()
