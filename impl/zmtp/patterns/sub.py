"""SUB (RFC 29): subscribes to topics and receives what matches.

Subscriptions are counted here, and only a topic's first subscribe and last
unsubscribe go on the wire: a publisher that counts (RFC 37) and one that
keeps a set per peer (libzmq) then agree on what we asked for. Incoming
messages are filtered again, since a publisher may send more than asked.
A full queue for a publisher discards what arrives (RFC 29), where libzmq
stops reading the connection instead.
"""

from __future__ import annotations

from ..errors import NotSupported
from ..pipe import Pipe
from ..socket import Socket
from ..socket_type import SocketType
from ..subscriptions import Subscriptions


def _topic(topic: bytes | str) -> bytes:
    return topic.encode("utf-8") if isinstance(topic, str) else bytes(topic)


class Sub(Socket):
    type = SocketType.SUB
    can_send = False

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._subs = Subscriptions()

    def _broadcast_subscription(self, topic: bytes, subscribe: bool) -> None:
        for pipe in self._pipes:
            if pipe.live and pipe.engine is not None:
                pipe.engine.send_subscription(topic, subscribe)

    def subscribe(self, topic: bytes | str = b"") -> None:
        self._check_open()
        topic = _topic(topic)
        if self._subs.add(topic):
            self._subscriptions_changed()
            self._broadcast_subscription(topic, True)

    def unsubscribe(self, topic: bytes | str = b"") -> None:
        self._check_open()
        topic = _topic(topic)
        if not self._subs.remove(topic):
            return
        self._subscriptions_changed()
        if not self.options.bugs.cancel_never_sent:
            self._broadcast_subscription(topic, False)

    def pipe_attached(self, pipe: Pipe) -> bool:
        assert pipe.engine is not None
        if self.options.bugs.sub_no_resubscribe:
            return True
        for topic in self._subs.topics():
            pipe.engine.send_subscription(topic, True)
        return True

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        # "SHALL silently discard messages if the queue for a publisher is full"
        self.deliver_discarding(pipe, messages)

    def filter_in(self, pipe: Pipe, frames: list[bytes]) -> list[bytes] | None:
        return frames if self._subs.matches(frames[0]) else None

    def _subscriptions_changed(self) -> None:
        # Subscribed to everything, nothing is filtered: no filter_in lets take_many move a
        # backlog in bulk instead of judging each message (a fifth of a busy SUB's time).
        if self._subs.everything:
            self.filter_in = None  # type: ignore[assignment]
        elif "filter_in" in self.__dict__:
            del self.filter_in

    def send_now(self, frames: list[bytes]) -> bool:
        raise NotSupported("SUB sockets cannot send; use subscribe() or an XSUB socket")
