"""Load and slow peers: many connections on one ROUTER, idle and non-reading peers, bounded memory.

The default size (200 connections) runs in CI; ZMTP_LOAD_FULL=1 runs the
size the requirements name (1,000). Peak RSS is printed, not compared with a
timing; the memory bound asserted is generous, to catch leaks, not to rank.
"""

from __future__ import annotations

import asyncio
import os
import resource

import pytest

import zmtp
from zmtp import EventKind

FULL = os.environ.get("ZMTP_LOAD_FULL") == "1"
N = 1000 if FULL else 200
SERVER = zmtp.CurveKeyPair.generate()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory now (the peak above is the whole process's, earlier tests included)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / (1 << 20)


def options(mechanism: str, server: bool) -> zmtp.SocketOptions:
    if mechanism == "CURVE" and server:
        return zmtp.SocketOptions(curve_server=True, curve_secretkey=SERVER.secret)
    if mechanism == "CURVE":
        client = zmtp.CurveKeyPair.generate()
        return zmtp.SocketOptions(curve_secretkey=client.secret, curve_serverkey=SERVER.public)
    return zmtp.SocketOptions()


@pytest.mark.parametrize("mechanism", ["NULL", "CURVE"])
async def test_one_router_serves_many_connections_while_messages_flow(ctx, mechanism):
    zmtp.ensure_fd_limit(3 * N + 256)  # the router's side, the dealers' side, and some to spare
    router = ctx.socket(zmtp.ROUTER, options(mechanism, True))
    mon = router.monitor()
    ep = await router.bind("tcp://127.0.0.1:0")
    dealers = [ctx.socket(zmtp.DEALER, options(mechanism, False)) for _ in range(N)]
    for d in dealers:
        await d.connect(ep)
    ready = 0
    async with asyncio.timeout(120):
        async for ev in mon:
            if ev.kind is EventKind.HANDSHAKE_SUCCEEDED:
                ready += 1
                if ready == N:
                    break
    # Every dealer sends, the router answers each by its routing id, three rounds.
    for rnd in range(3):
        for i, d in enumerate(dealers):
            await d.send_multipart([b"%d:%d" % (rnd, i)])
        seen = set()
        async with asyncio.timeout(60):
            while len(seen) < N:
                rid, body = await router.recv_multipart()
                seen.add(body)
                await router.send_multipart([rid, body])
        async with asyncio.timeout(60):
            for i, d in enumerate(dealers):
                assert await d.recv_multipart() == [b"%d:%d" % (rnd, i)]
    print(f"\n{N} {mechanism} connections on one ROUTER: peak RSS {peak_rss_mb():.0f} MB")
    assert peak_rss_mb() < 2048
    mon.close()


async def test_idle_connections_that_never_greet_do_not_stop_others(ctx):
    zmtp.ensure_fd_limit(2 * N + 256)
    pull = ctx.socket(zmtp.PULL, zmtp.SocketOptions(handshake_timeout=30))
    ep = await pull.bind("tcp://127.0.0.1:0")
    host, port = ep.removeprefix("tcp://").rsplit(":", 1)
    idle = [await asyncio.open_connection(host, int(port)) for _ in range(N)]  # connect, then silence
    push = ctx.socket(zmtp.PUSH)
    await push.connect(ep)
    async with asyncio.timeout(10):
        for i in range(100):
            await push.send(b"%d" % i)
        assert [await pull.recv() for _ in range(100)] == [b"%d" % i for i in range(100)]
    for _, writer in idle:
        writer.close()


async def test_a_peer_that_reads_nothing_does_not_stall_the_others(ctx):
    # A ROUTER drops what a full peer cannot take (RFC 28, libzmq's behaviour); others keep flowing.
    router = ctx.socket(zmtp.ROUTER, zmtp.SocketOptions(sndhwm=100))
    mon = router.monitor()
    ep = await router.bind("tcp://127.0.0.1:0")
    slow = ctx.socket(zmtp.DEALER, zmtp.SocketOptions(routing_id=b"slow", rcvhwm=10, recv_buffer_size=4096))
    fast = ctx.socket(zmtp.DEALER, zmtp.SocketOptions(routing_id=b"fast"))
    await slow.connect(ep)
    await fast.connect(ep)
    ready = 0
    async with asyncio.timeout(10):
        async for ev in mon:
            ready += ev.kind is EventKind.HANDSHAKE_SUCCEEDED
            if ready == 2:
                break
    before = rss_mb()
    big = b"x" * 65536
    async with asyncio.timeout(30):
        for i in range(2000):  # 128 MB offered to a peer that never reads
            await router.send_multipart([b"slow", big])
            if i % 100 == 0:
                await router.send_multipart([b"fast", b"%d" % i])
                assert await fast.recv() == b"%d" % i
                await asyncio.sleep(0)
    grew = rss_mb() - before
    print(f"\nRSS grew {grew:.0f} MB while 128 MB went to a peer that reads nothing")
    assert grew < 64  # bounded by the high-water mark and buffers, not by what was offered
    mon.close()
    await router.close(linger=0)  # what is queued for the slow peer would otherwise wait for it forever


def test_the_fd_limit_is_raised_or_refused_clearly(monkeypatch):
    soft, _ = zmtp.limits.fd_limit()
    assert zmtp.ensure_fd_limit(min(soft, 64)) == soft  # already enough: untouched
    monkeypatch.setattr(zmtp.limits, "fd_limit", lambda: (1024, 2048))

    def refuse(which, limits):
        raise ValueError("not allowed")  # an unprivileged process may not pass its hard limit

    monkeypatch.setattr(zmtp.limits.resource, "setrlimit", refuse)
    with pytest.raises(zmtp.FdLimitError, match="hard limit is 2048"):
        zmtp.ensure_fd_limit(4096)
