"""Helpers for tests that run two raw codecs against each other: in memory, or as two raw peers on loopback."""

from __future__ import annotations

import asyncio

from zmtp_conformance import rawcodec
from zmtp_conformance.rawpeer import RawPeer
from zmtp_conformance.trace import Transcript


async def raw_pair() -> tuple[RawPeer, RawPeer, asyncio.Server]:
    """A raw client connected to a raw server over loopback, no handshake yet: (client, server, listener)."""
    server = RawPeer("server", Transcript())
    attached = asyncio.Event()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.attach(reader, writer)
        attached.set()

    listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    client = RawPeer("client", Transcript())
    await client.connect(f"tcp://127.0.0.1:{listener.sockets[0].getsockname()[1]}")
    await attached.wait()
    return client, server, listener


def pump(a: rawcodec.Codec, b: rawcodec.Codec) -> None:
    """Pass what each side has to send to the other until both are quiet (at most ten rounds)."""
    for _ in range(10):
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            return
        b.receive(out_a)
        a.receive(out_b)
