"""zmtp on an event loop other than asyncio's own: uvloop's transports implement asyncio's
stream interface without subclassing asyncio.Transport, and its sockets are its own."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

import zmtp
from zmtp.keys import CurveKeyPair

uvloop = pytest.importorskip("uvloop")


async def _exchange(push_opts: zmtp.SocketOptions, pull_opts: zmtp.SocketOptions, endpoint: str) -> None:
    ctx = zmtp.Context()
    try:
        pull = ctx.socket(zmtp.PULL, pull_opts)
        ep = await pull.bind(endpoint)
        push = ctx.socket(zmtp.PUSH, push_opts)
        await push.connect(ep)
        await push.send_multipart([b"one", b"two"])
        assert await asyncio.wait_for(pull.recv_multipart(), 5) == [b"one", b"two"]
        big = b"x" * (1 << 20)  # read straight into its own buffer (receive_buffer)
        await push.send(big)
        assert await asyncio.wait_for(pull.recv_multipart(), 5) == [big]
        for i in range(2000):  # a stream: the write gather grows, reads grow
            await push.send(b"%d" % i)
        got = []
        while len(got) < 2000:
            got += await asyncio.wait_for(pull.recv_many(2000 - len(got)), 5)
        assert got == [[b"%d" % i] for i in range(2000)]
    finally:
        await asyncio.wait_for(ctx.term(), 10)


async def _round_trips(endpoint: str) -> None:
    ctx = zmtp.Context()
    try:
        rep = ctx.socket(zmtp.REP, zmtp.SocketOptions(linger=0))
        ep = await rep.bind(endpoint)
        req = ctx.socket(zmtp.REQ, zmtp.SocketOptions(linger=0))
        await req.connect(ep)
        for i in range(50):
            await req.send(b"ping %d" % i)
            assert await asyncio.wait_for(rep.recv_multipart(), 5) == [b"ping %d" % i]
            await rep.send(b"pong %d" % i)
            assert await asyncio.wait_for(req.recv_multipart(), 5) == [b"pong %d" % i]
    finally:
        await asyncio.wait_for(ctx.term(), 10)


def _ipc() -> str:
    return f"ipc://{Path(tempfile.mkdtemp()) / 'uv.ipc'}"


@pytest.mark.parametrize("transport", ["tcp", "ipc"])
def test_null_traffic_on_uvloop(transport):
    endpoint = "tcp://127.0.0.1:0" if transport == "tcp" else _ipc()
    opts = zmtp.SocketOptions(linger=1)
    uvloop.run(_exchange(opts, opts, endpoint))
    uvloop.run(_round_trips("tcp://127.0.0.1:0" if transport == "tcp" else _ipc()))


def test_curve_traffic_on_uvloop():
    server, client = CurveKeyPair.generate(), CurveKeyPair.generate()
    pull = zmtp.SocketOptions(linger=1, curve_server=True, curve_secretkey=server.secret)
    push = zmtp.SocketOptions(linger=1, curve_secretkey=client.secret, curve_serverkey=server.public)
    uvloop.run(_exchange(push, pull, "tcp://127.0.0.1:0"))
