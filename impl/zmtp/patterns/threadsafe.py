"""What the thread-safe socket types share (RFC 37; RFC 47, 48, 49).

CLIENT, SERVER, RADIO, DISH, SCATTER and GATHER carry single-part messages
only: a multipart send is refused, and a multipart message that arrives is
discarded whole. A peer that disconnects takes its unread messages with it
(Socket.engine_closed, as for every type); a queue made by `connect` is kept
while the connection is down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..errors import NotSupported
from ..pipe import Pipe
from ..socket import Socket

log = logging.getLogger(__name__)


def _group(group: bytes | str) -> bytes:
    return group.encode("utf-8") if isinstance(group, str) else bytes(group)


class SinglePart(Socket):
    def _refuse_multipart(self, frames: list[bytes]) -> None:
        if len(frames) > 1:
            raise NotSupported(
                f"{self.type.value} sockets do not allow multipart messages ({len(frames)} frames given)"
            )

    async def send_multipart(self, frames: Iterable[bytes]) -> None:
        msg = list(frames)
        self._refuse_multipart(msg)
        await super().send_multipart(msg)

    async def send(self, data: bytes, more: bool = False) -> None:
        if more:
            self._refuse_multipart([data, b""])  # a frame with more to come is a multipart message
        await super().send(data)

    async def send_many(self, messages: Iterable[Iterable[bytes]]) -> int:
        batch = [m if isinstance(m, list) else list(m) for m in messages]
        for msg in batch:
            self._refuse_multipart(msg)
        return await super().send_many(batch)

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        single = [frames for frames in messages if len(frames) == 1]
        if len(single) < len(messages):
            for frames in messages:
                if len(frames) > 1:
                    # "MUST discard any part of a multipart message"; libzmq keeps the connection, so do we.
                    log.debug(
                        "%s discarded a %d-frame message from %s", self.type.value, len(frames), pipe.peer_address
                    )
                    self._dropped("multipart")
        if single:
            super().deliver(pipe, single)
