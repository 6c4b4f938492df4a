"""One async API over both implementations, so a test can swap impl and libzmq."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from typing import Any

import zmq
import zmq.asyncio

import zmtp

_ipc_counter = itertools.count()


def endpoint_for(transport: str) -> str:
    if transport == "tcp":
        return "tcp://127.0.0.1:0"
    path = os.path.join(tempfile.gettempdir(), f"zmtp-test-{os.getpid()}-{next(_ipc_counter)}.ipc")
    return f"ipc://{path}"


class Side:
    """What both sides do the same way: the socket call names match."""

    sock: Any

    async def send_multipart(self, frames: list[bytes]) -> None:
        await self.sock.send_multipart(frames)

    async def recv_multipart(self) -> list[bytes]:
        return await self.sock.recv_multipart()

    def subscribe(self, topic: bytes) -> None:
        self.sock.subscribe(topic)


class LibzmqSide(Side):
    """A pyzmq asyncio socket with the zmtp.Socket method names."""

    name = "libzmq"

    def __init__(self, ctx: zmq.asyncio.Context, socket_type: str, **opts: object) -> None:
        self.sock = ctx.socket(getattr(zmq, socket_type))
        self.sock.linger = 0
        for key, value in opts.items():
            self.sock.setsockopt(getattr(zmq, key.upper()), value)

    async def bind(self, endpoint: str) -> str:
        self.sock.bind(endpoint)
        return self.sock.last_endpoint.decode()

    async def connect(self, endpoint: str) -> None:
        self.sock.connect(endpoint)

    def poke(self) -> None:
        """Make libzmq process its pending commands (attach new pipes)."""
        self.sock.getsockopt(zmq.EVENTS)

    async def close(self) -> None:
        self.sock.close(0)


class ImplSide(Side):
    name = "impl"

    def __init__(self, ctx: zmtp.Context, socket_type: str, **opts: object) -> None:
        self.sock = ctx.socket(socket_type, zmtp.SocketOptions(linger=0, **opts))

    async def bind(self, endpoint: str) -> str:
        return await self.sock.bind(endpoint)

    async def connect(self, endpoint: str) -> None:
        await self.sock.connect(endpoint)

    def poke(self) -> None:
        pass

    async def close(self) -> None:
        await self.sock.close(linger=0)


async def recv(side, timeout: float = 5.0) -> list[bytes]:
    return await asyncio.wait_for(side.recv_multipart(), timeout)
