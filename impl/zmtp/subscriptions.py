"""Counted prefix subscriptions (RFC 29, RFC 37 "The Publish-Subscribe Pattern").

Subscribing to "A" twice counts twice and needs two cancels; "" matches
everything; a topic matches every message that starts with it.
"""

from __future__ import annotations


class Subscriptions:
    __slots__ = ("_all", "_counts")

    def __init__(self) -> None:
        self._counts: dict[bytes, int] = {}
        self._all = 0  # count of the empty subscription, checked first

    def add(self, topic: bytes) -> bool:
        """Count one more; True when the topic is new."""
        if not topic:
            self._all += 1
            return self._all == 1
        n = self._counts.get(topic, 0) + 1
        self._counts[topic] = n
        return n == 1

    def remove(self, topic: bytes) -> bool:
        """Count one less; True when the topic's count reached zero. Unknown topics are ignored."""
        if not topic:
            if self._all == 0:
                return False
            self._all -= 1
            return self._all == 0
        n = self._counts.get(topic)
        if not n:
            return False
        if n == 1:
            del self._counts[topic]
            return True
        self._counts[topic] = n - 1
        return False

    @property
    def everything(self) -> bool:
        """Subscribed to the empty topic: every message matches."""
        return bool(self._all)

    def matches(self, data: bytes) -> bool:
        if self._all:
            return True
        counts = self._counts
        if not counts:
            return False
        if len(counts) < 8:
            return any(data.startswith(t) for t in counts)
        # Check each prefix of the message: cheaper than each topic when there are many.
        for i in range(1, min(len(data), max(map(len, counts))) + 1):
            if data[:i] in counts:
                return True
        return False

    def topics(self) -> list[bytes]:
        return ([b""] if self._all else []) + list(self._counts)

    def clear(self) -> list[bytes]:
        gone = self.topics()
        self._counts.clear()
        self._all = 0
        return gone

    def __len__(self) -> int:
        return len(self._counts) + (1 if self._all else 0)

    def __contains__(self, topic: bytes) -> bool:
        return bool(self._all) if not topic else topic in self._counts
