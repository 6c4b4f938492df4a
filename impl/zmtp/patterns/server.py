"""SERVER (RFC 47): replies to one CLIENT at a time, chosen by routing id.

Each peer's queue gets a routing id: a 32-bit integer of ours, never zero,
counted up from a random start as libzmq does (the peer has no say in it:
an Identity in its READY is ignored). `recv_message()` tells which peer a
message came from; `send(data, routing_id=...)` answers it.

Sending never waits. Where RFC 47 leaves the choice between dropping and an
error, this follows libzmq 4.3: an unknown routing id raises
HostUnreachable, and a full queue raises Again.
"""

from __future__ import annotations

import random
from dataclasses import replace

from ..errors import Again, HostUnreachable, InvalidState
from ..pipe import Pipe
from ..socket import ReceivedMessage
from ..socket_type import SocketType
from .threadsafe import SinglePart


class Server(SinglePart):
    type = SocketType.SERVER

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._routes: dict[int, Pipe] = {}
        self._ids: dict[Pipe, int] = {}
        self._next_id = random.getrandbits(32)

    def _generate_id(self) -> int:
        while True:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            if self._next_id and self._next_id not in self._routes:
                return self._next_id

    def pipe_attached(self, pipe: Pipe) -> bool:
        if pipe not in self._ids:  # a connect's queue keeps its id across reconnects
            rid = self._generate_id()
            self._ids[pipe] = rid
            self._routes[rid] = pipe
        return True

    def _forget(self, pipe: Pipe) -> None:
        rid = self._ids.pop(pipe, None)
        if rid is not None:
            del self._routes[rid]

    def pipe_detached(self, pipe: Pipe) -> None:
        super().pipe_detached(pipe)
        if not pipe.persistent:
            self._forget(pipe)

    def _remove_pipe(self, pipe: Pipe) -> None:
        super()._remove_pipe(pipe)
        self._forget(pipe)  # disconnect(): the connect's queue is gone too

    def routing_id_of(self, pipe: Pipe) -> int | None:
        return self._ids.get(pipe)

    async def recv_message(self) -> ReceivedMessage:
        msg = await super().recv_message()
        pipe = self._last_pipe
        return replace(msg, routing_id=self._ids.get(pipe) if pipe is not None else None)

    async def send(self, data: bytes, routing_id: int | None = None) -> None:
        """Send `data` to the peer with `routing_id` (from `recv_message`)."""
        self._check_open()
        if routing_id is None:
            raise InvalidState("a SERVER sends to one peer: pass the routing_id of a received message")
        pipe = self._routes.get(routing_id)
        if pipe is not None and self.options.bugs.server_ignores_routing_id:
            pipe = next(iter(self._routes.values()))
        if pipe is None:
            raise HostUnreachable(f"no peer with routing id {routing_id:#010x}")
        if not pipe.send([bytes(data)]):
            self._dropped("hwm")
            raise Again(f"the queue for routing id {routing_id:#010x} is full")

    def send_now(self, frames: list[bytes]) -> bool:
        raise InvalidState("a SERVER sends to one peer: use send(data, routing_id=...)")
