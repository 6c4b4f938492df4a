"""A recording proxy: the capture for traffic no sniffer sees.

Unix-domain sockets (ipc://) never cross `lo`, and a machine without root
cannot sniff at all. There the harness puts this proxy in front of each
server: clients connect to the proxy, the proxy connects to the server, and
every byte each side sends is forwarded unchanged and recorded with its
time. `synth.write_packets` then turns the recording into a pcap that
reads like a sniffed one.

The proxy passes on half-closes (EOF one way, the other way still open) and
aborts, so a peer that closes after an ERROR looks the same through it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from dataclasses import dataclass, field

from ..endpoints import UNIX, free_endpoint, ipc_path, tcp_address
from .synth import Chunk

READ_SIZE = 1 << 18


@dataclass
class Conversation:
    """One proxied connection: who the client was, and what each side sent."""

    client: tuple[str, int] | int  # TCP address, or for ipc the client's process id (SO_PEERCRED)
    chunks: list[Chunk] = field(default_factory=list)
    reset: bool = False


def _peer_pid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


class RecordingProxy:
    def __init__(self, target: str, ipc: str = UNIX) -> None:
        self.target = target
        self.ipc = ipc  # how the server and its clients reach an ipc endpoint (endpoints.IPC_KINDS)
        self.endpoint = ""
        self.conversations: list[Conversation] = []
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self, listen: bool = True) -> str:
        """Listen next to the target; returns the endpoint clients should use instead.

        With `listen=False` only the endpoint is chosen, and `listen()` opens it later: in front of a
        server that binds after its clients connect, they must find nothing there until it does (a
        proxy that accepted and then reset them would look like a handshake cut short).
        """
        if not listen:
            self.endpoint = free_endpoint("tcp" if self.target.startswith("tcp://") else "ipc", self.ipc)
            return self.endpoint
        if self.target.startswith("tcp://"):
            host = self.target[6:].rsplit(":", 1)[0].strip("[]")
            self.server = await asyncio.start_server(self._accept, host, 0)
            port = self.server.sockets[0].getsockname()[1]
            self.endpoint = f"tcp://{host}:{port}" if ":" not in host else f"tcp://[{host}]:{port}"
        elif self.target.startswith("ipc://"):
            self.endpoint = f"ipc://{ipc_path('proxy', self.ipc)}"
            await self.listen()
        else:
            raise ValueError(f"cannot proxy {self.target!r}: only tcp:// and ipc:// endpoints")
        return self.endpoint

    async def listen(self) -> None:
        """Open the endpoint `start(listen=False)` chose."""
        if self.endpoint.startswith("tcp://"):
            host, port = self.endpoint[6:].rsplit(":", 1)
            self.server = await asyncio.start_server(self._accept, host.strip("[]"), int(port))
        elif (address := tcp_address(self.ipc, self.endpoint[6:])) is not None:
            self.server = await asyncio.start_server(self._accept, *address)
        else:
            self.server = await asyncio.start_unix_server(self._accept, self.endpoint[6:])

    async def _connect_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.target.startswith("tcp://"):
            host, port = self.target[6:].rsplit(":", 1)
            return await asyncio.open_connection(host.strip("[]"), int(port))
        if (address := tcp_address(self.ipc, self.target[6:])) is not None:
            return await asyncio.open_connection(*address)
        return await asyncio.open_unix_connection(self.target[6:])

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        sock = c_writer.get_extra_info("socket")
        who = c_writer.get_extra_info("peername") if sock.family != socket.AF_UNIX else _peer_pid(sock)
        conv = Conversation(who if isinstance(who, int) else (who[0], who[1]))
        self.conversations.append(conv)
        self.writers.add(c_writer)
        try:
            s_reader, s_writer = await self._connect_target()
        except OSError:
            conv.reset = True
            c_writer.transport.abort()
            return
        self.writers.add(s_writer)
        up = asyncio.ensure_future(self._pump(c_reader, s_writer, "c", conv))
        down = asyncio.ensure_future(self._pump(s_reader, c_writer, "s", conv))
        for t in (up, down):
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)
        await asyncio.gather(up, down, return_exceptions=True)
        for w in (c_writer, s_writer):
            w.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, who: str, conv: Conversation
    ) -> None:
        try:
            while data := await reader.read(READ_SIZE):
                conv.chunks.append((who, data, time.time()))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            # One side reset: reset the other too, as a direct connection would have been.
            conv.reset = True
            writer.transport.abort()
            return
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in self.writers:
            w.transport.abort()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.endpoint.startswith("ipc://") and tcp_address(self.ipc, self.endpoint[6:]) is None:
            try:
                os.unlink(self.endpoint[6:])
            except FileNotFoundError:
                pass
