"""REP (RFC 28): takes a request with its envelope, and sends the reply back along it.

The envelope is every frame up to and including the first empty one; a
request without that delimiter is discarded. One reply per request.
"""

from __future__ import annotations

import logging

from ..errors import InvalidState
from ..pipe import Pipe
from ..socket import Socket
from ..socket_type import SocketType

log = logging.getLogger(__name__)


class Rep(Socket):
    type = SocketType.REP

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._reply_to: tuple[Pipe, list[bytes]] | None = None

    def filter_in(self, pipe: Pipe, frames: list[bytes]) -> list[bytes] | None:
        try:
            split = frames.index(b"") + 1
        except ValueError:
            if self.options.bugs.rep_takes_request_without_delimiter:
                self._reply_to = (pipe, [])
                return frames
            log.debug("REP discarded a request from %s without an empty delimiter", pipe.peer_address)
            return None
        body = frames[split:]
        if not body:
            return None
        self._reply_to = (pipe, frames[:split])
        return body

    def check_recv(self) -> None:
        if self._reply_to is not None:
            raise InvalidState("REP must send the reply before receiving the next request")

    def take(self) -> list[bytes] | None:
        return None if self._reply_to is not None else super().take()

    def take_many(self, limit: int) -> list[list[bytes]]:
        # Each request needs its own reply before the next may be read.
        frames = self.take() if limit > 0 else None
        return [] if frames is None else [frames]

    def send_now(self, frames: list[bytes]) -> bool:
        if self._reply_to is None:
            raise InvalidState("REP must receive a request before sending a reply")
        pipe, envelope = self._reply_to
        self._reply_to = None
        if not pipe.live and not pipe.persistent:
            log.debug("REP dropped a reply: the requester %s is gone", pipe.peer_address)
            return True
        # The requester waits for this reply, and nothing else can leave before the next
        # request: write it now rather than at the end of the loop turn.
        if self.options.bugs.rep_drop_envelope:
            envelope = []
        pipe.send([*envelope, *frames], now=True)
        return True
