"""A byte-level peer over a real TCP connection, driven by the sans-I/O core."""

from __future__ import annotations

import asyncio

from zmtp.connection import Connection, State
from zmtp.events import Event


class RawPeer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Connection | None) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = conn
        self.events: list[Event] = []

    @classmethod
    async def open(cls, endpoint: str, conn: Connection | None = None) -> RawPeer:
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        peer = cls(reader, writer, conn)
        if conn is not None:
            await peer.flush()
        return peer

    async def flush(self) -> None:
        assert self.conn is not None
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def handshake(self, timeout: float = 5.0) -> None:
        assert self.conn is not None
        async with asyncio.timeout(timeout):
            while self.conn.state is not State.TRAFFIC:
                await self.pump_once()

    async def pump_once(self) -> bytes:
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionResetError("peer closed")
        if self.conn is not None:
            self.events += self.conn.receive_data(data)
            await self.flush()
        return data

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_peer(self, timeout: float = 5.0) -> bytes:
        """Read until EOF; returns everything read. TimeoutError if the peer keeps it open."""
        seen = b""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    return seen
                if not data:
                    return seen
                seen += data

    def close(self) -> None:
        self.writer.close()
