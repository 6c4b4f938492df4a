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

    def _request(self, frames: list[bytes]) -> tuple[list[bytes], int]:
        """The request on the wire, and the request id it carries (req_correlate)."""
        if self._waiting_reply and not self.options.req_relaxed:
            raise InvalidState("REQ must receive the reply before sending again (set req_relaxed to allow it)")
        if self.options.req_correlate:
            rid = (self._request_id + 1) & 0xFFFFFFFF
            return [struct.pack(">I", rid), b"", *frames], rid
        if self.options.bugs.req_no_delimiter:
            return list(frames), self._request_id
        return [b"", *frames], self._request_id

    def send_now(self, frames: list[bytes]) -> bool:
        msg, rid = self._request(frames)
        # A REQ waits for the reply next: the request is written now, not at the end of the loop turn.
        pipe = self._lb_try(msg, self._out_pipes, now=True)
        if pipe is None:
            return False  # no peer can take it yet: send_waiting waits for one
        self._replies.clear()
        self._request_id = rid
        self._waiting_reply = True
        self._reply_pipe = pipe
        return True

    async def send_waiting(self, frames: list[bytes]) -> None:
        msg, rid = self._request(frames)
        # The state changes only once a peer took the request: a send given up while waiting
        # (a timeout, a cancel) sent nothing, so the REQ may still send its next request.
        pipe = await self._lb_send(msg, self._out_pipes, now=True)
        self._replies.clear()
        self._request_id = rid
        self._waiting_reply = True
        self._reply_pipe = pipe

    async def send_many(self, messages: Iterable[Iterable[bytes]]) -> int:
        return await Socket.send_many(self, messages)  # one request at a time, by the rules

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        from_asked = pipe is self._reply_pipe or self.options.bugs.req_accepts_any_reply
        if not self._waiting_reply or not from_asked:
            log.debug(
                "REQ dropped %d message(s) from %s: no request is pending with that peer",
                len(messages),
                pipe.peer_address,
            )
            return
        self._replies.extend(messages)
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

    def check_recv(self) -> None:
        if not self._waiting_reply:
            raise InvalidState("REQ must send a request before it can receive")

    def take(self) -> list[bytes] | None:
        return self._take_reply() if self._waiting_reply else None

    def take_many(self, limit: int) -> list[list[bytes]]:
        frames = self.take() if limit > 0 else None  # one reply per request
        return [] if frames is None else [frames]
