"""Socket events, in the manner of libzmq's zmq_socket_monitor.

A socket tells its monitors what happens to its connections: a listener
opened, a peer accepted or connected to, a handshake that succeeded or
failed (and why), a connection lost, the socket closed. Applications read
them as an async iterator::

    async with sock.monitor() as events:
        async for ev in events:
            print(ev.kind, ev.endpoint, ev.reason)

The socket only does work for events when a monitor is attached.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


class EventKind(enum.Enum):
    """What happened; the names follow libzmq's ZMQ_EVENT_* where one exists."""

    LISTENING = "listening"  # bind succeeded
    BIND_FAILED = "bind_failed"
    ACCEPTED = "accepted"  # a peer connected to a bound endpoint
    CONNECTED = "connected"  # our outgoing connection was established
    CONNECT_RETRIED = "connect_retried"  # an outgoing attempt failed; another follows after `interval`
    HANDSHAKE_SUCCEEDED = "handshake_succeeded"
    HANDSHAKE_FAILED = "handshake_failed"  # `failure` says protocol, auth or timeout
    DISCONNECTED = "disconnected"  # a connection that completed its handshake ended
    CLOSED = "closed"  # the socket itself was closed; the last event a monitor sees


class HandshakeFailure(enum.Enum):
    """Why a handshake failed, as libzmq's three HANDSHAKE_FAILED_* events split it."""

    PROTOCOL = "protocol"  # malformed greeting or command, socket-type mismatch, mechanism mismatch
    AUTH = "auth"  # ZAP refused the peer, or the peer sent ERROR
    TIMEOUT = "timeout"  # handshake_timeout expired
    CLOSED = "closed"  # the peer went away before finishing


@dataclass(frozen=True, slots=True)
class SocketEvent:
    kind: EventKind
    endpoint: str  # the socket's endpoint (bound or connected)
    peer: str = ""  # the remote address, when there is one
    reason: str = ""  # for failures and disconnections: what went wrong, for people
    failure: HandshakeFailure | None = None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. mechanism, version, peer socket type, duration (s)
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind.value, "endpoint": self.endpoint}
        if self.peer:
            out["peer"] = self.peer
        if self.reason:
            out["reason"] = self.reason
        if self.failure is not None:
            out["failure"] = self.failure.value
        out.update(self.details)
        return out


class Monitor:
    """One reader's queue of a socket's events; an async iterator that ends when the socket closes.

    The queue is bounded: a reader that falls behind loses the oldest events
    (counted in `dropped`) rather than holding the socket's memory hostage.
    """

    def __init__(self, detach: Any, maxlen: int = 10_000) -> None:
        self._events: deque[SocketEvent] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self._detach = detach
        self._ended = False
        self.dropped = 0

    def _push(self, event: SocketEvent) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def drain(self) -> list[SocketEvent]:
        """The events queued so far, without waiting."""
        out = list(self._events)
        self._events.clear()
        return out

    async def next(self, timeout: float | None = None) -> SocketEvent | None:
        """The next event; None once the socket has closed and every event was read.

        Raises TimeoutError when `timeout` passes first.
        """
        while not self._events:
            if self._ended:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            finally:
                self._waiter = None
        return self._events.popleft()

    def close(self) -> None:
        """Stop receiving events; the iterator ends after those already queued."""
        if not self._ended:
            self._detach(self)
            self._end()

    def __aiter__(self) -> Monitor:
        return self

    async def __anext__(self) -> SocketEvent:
        ev = await self.next()
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def __aenter__(self) -> Monitor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
