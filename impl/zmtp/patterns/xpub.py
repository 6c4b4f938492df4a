"""XPUB (RFC 29): a PUB that also hands subscriptions up to the application.

The application receives `01`+topic when a topic gains its first subscriber
(every time, with xpub_verbose) and `00`+topic when it loses its last one,
including when that subscriber disconnects. Other messages from subscribers
are delivered as they are.
"""

from __future__ import annotations

from collections import deque

from ..pipe import Pipe
from ..socket_type import SocketType
from ..subscriptions import Subscriptions
from .pub import Pub


class XPub(Pub):
    type = SocketType.XPUB
    can_recv = True

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._subscribers = Subscriptions()  # per topic: how many pipes hold it
        self._upstream: deque[list[bytes]] = deque()

    def _up(self, frames: list[bytes]) -> None:
        self._upstream.append(frames)
        self._readable.set()

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        self._upstream.extend(messages)
        self._readable.set()

    def subscription_changed(self, pipe: Pipe, topic: bytes, subscribe: bool) -> None:
        if subscribe:
            new_for_pipe = pipe.subscriptions.add(topic)
            first = new_for_pipe and self._subscribers.add(topic)
            if first or self.options.xpub_verbose:
                self._up([b"\x01" + topic])
        elif pipe.subscriptions.remove(topic) and self._subscribers.remove(topic):
            self._up([b"\x00" + topic])

    def pipe_detached(self, pipe: Pipe) -> None:
        if self.options.bugs.xpub_keeps_gone_subscriptions:
            return
        for topic in pipe.subscriptions.clear():
            if self._subscribers.remove(topic):
                self._up([b"\x00" + topic])

    def take(self) -> list[bytes] | None:
        return self._upstream.popleft() if self._upstream else None

    def take_many(self, limit: int) -> list[list[bytes]]:
        up = self._upstream
        return [up.popleft() for _ in range(min(limit, len(up)))]
