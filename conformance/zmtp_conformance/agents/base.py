"""What the Python agents share: a table of sockets and the ops that are the
same for any socket with asyncio `send_multipart` / `recv_multipart` /
`subscribe` / `unsubscribe` (zmtp.Socket and zmq.asyncio.Socket both are)."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import protocol


class SocketTableAgent:
    def __init__(self) -> None:
        self.sockets: dict[str, Any] = {}
        self._n = 0

    def _add(self, sock: Any) -> dict[str, str]:
        self._n += 1
        name = f"s{self._n}"
        self.sockets[name] = sock
        return {"socket": name}

    def _sock(self, socket: str) -> Any:
        try:
            return self.sockets[socket]
        except KeyError:
            raise TypeError(f"no socket {socket!r}") from None

    async def op_send(self, socket: str, frames: list[str], timeout: float = 5.0) -> dict:
        await asyncio.wait_for(self._sock(socket).send_multipart(protocol.decode_frames(frames)), timeout)
        return {}

    async def op_recv(self, socket: str, timeout: float = 2.0) -> dict:
        frames = await asyncio.wait_for(self._sock(socket).recv_multipart(), timeout)
        return {"frames": protocol.encode_frames(frames)}

    async def op_subscribe(self, socket: str, topic: str = "") -> dict:
        self._sock(socket).subscribe(bytes.fromhex(topic))
        return {}

    async def op_unsubscribe(self, socket: str, topic: str = "") -> dict:
        self._sock(socket).unsubscribe(bytes.fromhex(topic))
        return {}
