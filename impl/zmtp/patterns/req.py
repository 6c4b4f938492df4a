"""REQ (RFC 28): strict send/receive alternation with an empty delimiter.

Replies are taken only from the peer the request went to; anything else is
dropped. `req_relaxed` allows a new request before the reply (the old reply
is then dropped); `req_correlate` puts a request id before the delimiter
and checks it on the reply, as libzmq's ZMQ_REQ_CORRELATE does.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Iterable

from ..errors import InvalidState
from ..pipe import Pipe
from ..socket import Socket
from ..socket_type import SocketType
from .loadbalance import LoadBalanced

log = logging.getLogger(__name__)


class Req(LoadBalanced):
    type = SocketType.REQ

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._waiting_reply = False
        self._reply_pipe: Pipe | None = None
        self._request_id = 0x1DE4F35A
        self._replies: deque[list[bytes]] = deque()

    async def _send(self, frames: list[bytes]) -> None:
        if self._waiting_reply and not self.options.req_relaxed:
            raise InvalidState("REQ must receive the reply before sending again (set req_relaxed to allow it)")
        self._replies.clear()
        if self.options.req_correlate:
            self._request_id = (self._request_id + 1) & 0xFFFFFFFF
            msg = [struct.pack(">I", self._request_id), b"", *frames]
        else:
            msg = [b"", *frames]
        self._reply_pipe = None
        self._waiting_reply = True
        self._reply_pipe = await self._lb_send(msg, self._out_pipes)

    def _send_nowait(self, frames: list[bytes]) -> bool:
        return False  # every request goes through _send: delimiter, state, reply pipe

    async def send_many(self, messages: Iterable[Iterable[bytes]]) -> int:
        return await Socket.send_many(self, messages)  # one request at a time, by the rules

    def _deliver(self, pipe: Pipe, frames: list[bytes]) -> None:
        if not self._waiting_reply or pipe is not self._reply_pipe:
            log.debug("REQ dropped a message from %s: no request is pending with that peer", pipe.peer_address)
            return
        self._replies.append(frames)
        self._readable.set()

    def _take_reply(self) -> list[bytes] | None:
        while self._replies:
            frames = self._replies.popleft()
            if self.options.req_correlate:
                if len(frames) < 3 or frames[1] != b"" or frames[0] != struct.pack(">I", self._request_id):
                    continue
                body = frames[2:]
            else:
                if len(frames) < 2 or frames[0] != b"":
                    continue  # RFC 28: replies without the delimiter are discarded
                body = frames[1:]
            self._waiting_reply = False
            self._last_pipe = self._reply_pipe
            self._reply_pipe = None
            return body
        return None

    async def _recv(self) -> list[bytes]:
        if not self._waiting_reply:
            raise InvalidState("REQ must send a request before it can receive")
        while True:
            body = self._take_reply()
            if body is not None:
                return body
            await self._wait(self._readable)

    def _recv_nowait(self) -> list[bytes] | None:
        return self._take_reply() if self._waiting_reply else None
