"""PUB (RFC 29): sends each message to every peer that subscribed to a prefix of it.

Filtering happens here, at the publisher (RFC 37). A peer at its high-water
mark misses the message rather than slowing the others down. PUB never
delivers anything to the application.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..pipe import Pipe
from ..socket import Socket
from ..socket_type import SocketType


class Pub(Socket):
    type = SocketType.PUB
    can_recv = False

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        return  # RFC 29: a PUB drops any data from its subscribers

    def subscription_changed(self, pipe: Pipe, topic: bytes, subscribe: bool) -> None:
        if subscribe:
            pipe.subscriptions.add(topic)
        else:
            pipe.subscriptions.remove(topic)

    def send_now(self, frames: list[bytes]) -> bool:
        topic = frames[0]
        for pipe in self._pipes:
            wanted = self.options.bugs.pub_ignore_subscriptions or pipe.subscriptions.matches(topic)
            if pipe.live and wanted and not pipe.send(frames):
                self._dropped("hwm")  # the peer is full: it misses this one
        return True  # a PUB never waits

    async def send_many(self, messages: Iterable[Iterable[bytes]]) -> int:
        """Each subscriber gets its share of the batch in one go (the batch encoder's path),
        rather than every message being dealt to every subscriber in turn."""
        batch = self._whole_batch(messages)
        everything = self.options.bugs.pub_ignore_subscriptions
        for pipe in self._pipes:
            if not pipe.live:
                continue
            subs = pipe.subscriptions
            mine = batch if everything or subs.everything else [m for m in batch if subs.matches(m[0])]
            if mine:
                for _ in range(len(mine) - pipe.send_many(mine)):
                    self._dropped("hwm")  # the peer is full: it misses the rest
        return len(batch)
