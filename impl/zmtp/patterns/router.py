"""ROUTER (RFC 28): addresses each peer by its routing id.

The id is the peer's Identity property, or one we make up (a zero octet and
a 32-bit counter, as libzmq does, so it can never clash with an announced
id: RFC 37 reserves ids that start with zero). On receive the id is the
first frame; on send the first frame picks the peer.
"""

from __future__ import annotations

import logging
import struct

from ..errors import HostUnreachable
from ..pipe import Pipe
from ..socket import Socket
from ..socket_type import SocketType

log = logging.getLogger(__name__)


class Router(Socket):
    type = SocketType.ROUTER

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._routes: dict[bytes, Pipe] = {}
        self._next_id = 0x6B8B4567  # libzmq starts from a random value too

    def _generate_id(self) -> bytes:
        while True:
            self._next_id = (self._next_id + 1) & 0xFFFFFFFF
            rid = b"\x00" + struct.pack(">I", self._next_id)
            if rid not in self._routes:
                return rid

    def pipe_attached(self, pipe: Pipe) -> bool:
        rid = pipe.routing_id
        if not rid or rid[0] == 0:
            if rid:
                log.warning(
                    "peer %s announced Identity starting with 0x00 (reserved by RFC 37); using our own",
                    pipe.peer_address,
                )
            rid = self._generate_id()
        elif rid in self._routes:
            old = self._routes[rid]
            if not self.options.router_handover:
                log.warning("routing id %r is already taken; refusing %s", rid, pipe.peer_address)
                return False
            log.info("routing id %r handed over from %s to %s", rid, old.peer_address, pipe.peer_address)
            del self._routes[rid]
            old.routing_id = b""
            if old.engine is not None:
                old.engine.close()
        pipe.routing_id = rid
        self._routes[rid] = pipe
        return True

    def pipe_detached(self, pipe: Pipe) -> None:
        if self._routes.get(pipe.routing_id) is pipe:
            del self._routes[pipe.routing_id]

    def filter_in(self, pipe: Pipe, frames: list[bytes]) -> list[bytes] | None:
        # Also for a peer that has left since: its messages still count.
        if self.options.bugs.router_no_routing_id:
            return frames
        return [pipe.routing_id, *frames]

    def send_now(self, frames: list[bytes]) -> bool:
        if len(frames) < 2:
            raise ValueError("ROUTER messages start with a routing id frame followed by at least one frame")
        rid = frames[0]
        pipe = self._routes.get(rid)
        if pipe is None:
            if self.options.router_mandatory and not self.options.bugs.router_mandatory_ignored:
                raise HostUnreachable(f"no peer with routing id {rid!r}")
            self._dropped("unroutable")
            return True  # RFC 28: unroutable messages are dropped silently
        if pipe.send(frames[1:]):
            return True
        if not self.options.router_mandatory:
            self._dropped("hwm")
            return True  # peer at its high-water mark: drop, as libzmq does
        return False  # ROUTER_MANDATORY: wait for room

    async def send_waiting(self, frames: list[bytes]) -> None:
        if len(frames) < 2:
            raise ValueError("ROUTER messages start with a routing id frame followed by at least one frame")
        rid, body = frames[0], frames[1:]
        while True:
            pipe = self._routes.get(rid)
            if pipe is None:
                if self.options.router_mandatory:
                    raise HostUnreachable(f"no peer with routing id {rid!r}")
                self._dropped("unroutable")
                return  # RFC 28: unroutable messages are dropped silently
            if pipe.send(body):
                return
            if not self.options.router_mandatory:
                self._dropped("hwm")
                return  # peer at its high-water mark: drop, as libzmq does
            await self._wait(self._writable)
