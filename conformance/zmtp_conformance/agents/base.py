"""What the Python agents share: a table of sockets and the ops that are the
same for any socket with asyncio `send_multipart` / `recv_multipart` /
`subscribe` / `unsubscribe` (zmtp.Socket and zmq.asyncio.Socket both are)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from .. import protocol


class EventLog:
    """A socket's connection events, as the `events` op reports them (docs/agent-protocol.md).

    Each agent feeds it from its implementation's monitor, translated to the
    protocol's names (`handshake_succeeded`, `handshake_failed`, ...).
    """

    def __init__(self) -> None:
        self.events: deque[dict[str, Any]] = deque(maxlen=10_000)
        self._changed = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    async def take(self, until: str | None, timeout: float) -> list[dict[str, Any]]:
        """Everything queued, or up to and including the first `until` event (waiting for it).

        On timeout the queue is left as it was, so a later request still sees it all.
        """
        if until is None:
            out = list(self.events)
            self.events.clear()
            return out
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == until:
                    out = [self.events.popleft() for _ in range(i + 1)]
                    return out
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                seen = ", ".join(e["event"] for e in self.events) or "no events"
                raise TimeoutError(f"no {until} event within {timeout:g}s (saw {seen})")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass


def numbered(template: list[bytes], n: int) -> list[bytes]:
    """Message n of a send_until_full: the template with "n " written before its last frame's octets."""
    return [*template[:-1], f"{n} ".encode() + template[-1]]


def latency_summary(samples_ns: list[int]) -> dict[str, Any]:
    """Round-trip times as the `bench_rtt` op reports them: microseconds, percentiles by rank."""
    s = sorted(samples_ns)
    if not s:
        return {"count": 0}

    def pct(p: float) -> float:
        return s[min(len(s) - 1, int(p * len(s)))] / 1000

    return {"count": len(s), "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": sum(s) / len(s) / 1000}


class SocketTableAgent:
    def __init__(self) -> None:
        self.sockets: dict[str, Any] = {}
        self.event_logs: dict[str, EventLog] = {}
        self._n = 0

    def _add(self, sock: Any) -> dict[str, str]:
        self._n += 1
        name = f"s{self._n}"
        self.sockets[name] = sock
        self.event_logs[name] = EventLog()
        return {"socket": name}

    async def op_events(self, socket: str, until: str | None = None, timeout: float = 2.0) -> dict:
        self._sock(socket)
        return {"events": await self.event_logs[socket].take(until, timeout)}

    def _sock(self, socket: str) -> Any:
        try:
            return self.sockets[socket]
        except KeyError:
            raise TypeError(f"no socket {socket!r}") from None

    async def op_send(self, socket: str, frames: list[str], timeout: float = 5.0) -> dict:
        await asyncio.wait_for(self._sock(socket).send_multipart(protocol.decode_frames(frames)), timeout)
        return {}

    async def op_recv(self, socket: str, timeout: float = 2.0) -> dict:
        frames = await asyncio.wait_for(self._sock(socket).recv_multipart(), timeout)
        return {"frames": protocol.encode_frames(frames)}

    async def op_subscribe(self, socket: str, topic: str = "") -> dict:
        self._sock(socket).subscribe(bytes.fromhex(topic))
        return {}

    async def op_unsubscribe(self, socket: str, topic: str = "") -> dict:
        self._sock(socket).unsubscribe(bytes.fromhex(topic))
        return {}
