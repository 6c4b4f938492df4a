"""XSUB (RFC 29): a SUB whose subscriptions are messages the application sends.

A single-frame message starting with 01 subscribes, with 00 cancels; it
goes to every publisher as a SUBSCRIBE/CANCEL command (or in the 3.0 frame
form, to a 3.0 peer). Other messages go to every publisher as they are.
Nothing is filtered on receive. A full queue for a publisher discards what
arrives (RFC 29), where libzmq stops reading the connection instead.
"""

from __future__ import annotations

from collections import Counter

from ..pipe import Pipe
from ..socket import Socket
from ..socket_type import SocketType


class XSub(Socket):
    type = SocketType.XSUB

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._subs: Counter[bytes] = Counter()  # replayed to publishers that (re)connect

    def pipe_attached(self, pipe: Pipe) -> bool:
        assert pipe.engine is not None
        for topic in self._subs:
            pipe.engine.send_subscription(topic, True)
        return True

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        # "SHALL silently discard messages if the incoming queue for a publisher is full"
        self.deliver_discarding(pipe, messages)

    def send_now(self, frames: list[bytes]) -> bool:
        first = frames[0]
        if len(frames) == 1 and first[:1] in (b"\x00", b"\x01"):
            topic = first[1:]
            subscribe = first[0] == 1
            if subscribe:
                self._subs[topic] += 1
            elif self._subs[topic] > 0:
                self._subs[topic] -= 1
                if not self._subs[topic]:
                    del self._subs[topic]
            for pipe in self._pipes:
                if pipe.live and pipe.engine is not None:
                    pipe.engine.send_subscription(topic, subscribe)
            return True
        # RFC 29: a connecting XSUB keeps its queue whether or not the connection is up yet, so
        # what it sends before the handshake waits in the pipe (not for `immediate` pipes).
        waiting_ok = not self.options.immediate
        for pipe in self._pipes:
            if pipe.live or (pipe.persistent and waiting_ok):
                pipe.send(frames)
        return True  # like a PUB, an XSUB never waits for a full publisher
