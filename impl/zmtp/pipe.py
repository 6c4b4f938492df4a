"""A pipe: the socket's view of one peer.

It holds the messages received from that peer and not yet read, the
messages for it that the transport could not take yet, and what the pattern
needs to know about the peer (routing id, subscriptions). A pipe made by
`connect` outlives its connections, as libzmq's do, so that messages sent
before the peer is up, or while it reconnects, wait in it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .metadata import Metadata
from .subscriptions import Subscriptions

FLUSH_MESSAGES = 64  # messages per batch when queued messages go out
FLUSH_BYTES = 256 * 1024  # ... or fewer, once a batch holds this much

if TYPE_CHECKING:
    from .engine import Engine
    from .socket import Socket


class Pipe:
    __slots__ = (
        "endpoint",
        "engine",
        "in_active",
        "inbound",
        "live",
        "metadata",
        "peer_address",
        "pending",
        "persistent",
        "properties",
        "rcvhwm",
        "resume_at",
        "routing_id",
        "sndhwm",
        "socket",
        "subscriptions",
    )

    def __init__(self, socket: Socket, endpoint: str, *, persistent: bool) -> None:
        self.socket = socket
        self.endpoint = endpoint
        self.engine: Engine | None = None
        self.inbound: deque[list[bytes]] = deque()
        self.pending: deque[list[bytes]] = deque()
        self.routing_id = b""
        self.metadata: dict[str, bytes] = {}
        self.subscriptions = Subscriptions()  # what the peer asked for, on PUB/XPUB
        self.persistent = persistent  # made by connect: survives reconnects
        self.live = False  # an engine has completed its handshake on it
        self.in_active = False  # queued in the socket's fair-queue ring
        self.sndhwm = socket.options.sndhwm
        self.rcvhwm = socket.options.rcvhwm
        self.resume_at = max(1, self.rcvhwm // 2)  # a paused connection is read again below this
        self.peer_address = ""
        self.properties = Metadata()  # per-message properties (Socket-Type, User-Id, ...)

    def __repr__(self) -> str:
        return f"<Pipe {self.endpoint} peer={self.peer_address or '-'} live={self.live}>"

    # -- outbound ----------------------------------------------------------

    @property
    def writable(self) -> bool:
        """Can a message be taken now without exceeding the high-water mark?"""
        engine = self.engine
        if engine is not None and engine.ready and not engine.paused and not self.pending:
            return True
        return not self.sndhwm or len(self.pending) < self.sndhwm

    def send(self, frames: list[bytes], now: bool = False) -> bool:
        """Queue one whole message for the peer; False when the pipe is full.
        `now`: write it at once rather than at the end of this loop turn (Engine.write_message)."""
        engine = self.engine
        if engine is not None and engine.ready and not engine.paused and not self.pending:
            engine.write_message(frames, now)
            return True
        if self.sndhwm and len(self.pending) >= self.sndhwm:
            return False
        self.pending.append(frames)
        return True

    def send_many(self, messages: list[list[bytes]]) -> int:
        """Queue as many of `messages` as the pipe takes now; returns how many."""
        engine = self.engine
        taken, total = 0, len(messages)
        # Slices, so that the transport can push back (pause_writing) part
        # way through a batch of large messages instead of taking it whole.
        while taken < total and engine is not None and engine.ready and not engine.paused and not self.pending:
            # Judged by the first frame of the slice's first message (the batch API's messages
            # are usually alike): 64 small messages, or about FLUSH_BYTES of large ones.
            first = messages[taken]
            n = FLUSH_MESSAGES if not first or len(first[0]) < 4096 else max(1, FLUSH_BYTES // len(first[0]))
            chunk = messages[taken : taken + n]
            engine.write_messages(chunk)
            taken += len(chunk)
        if taken < total:
            room = total - taken if not self.sndhwm else max(0, self.sndhwm - len(self.pending))
            self.pending.extend(messages[taken : taken + room])
            taken += min(room, total - taken)
        return taken

    def flush_pending(self) -> None:
        engine = self.engine
        pending = self.pending
        # In batches, as send_many writes (a batch is encoded in one pass), but small enough
        # that the transport can push back (pause_writing) between them.
        while pending and engine is not None and engine.ready and not engine.paused:
            batch = [pending.popleft()]
            size = sum(map(len, batch[0]))
            while pending and len(batch) < FLUSH_MESSAGES and size < FLUSH_BYTES:
                frames = pending.popleft()
                batch.append(frames)
                size += sum(map(len, frames))
            if len(batch) == 1:
                engine.write_message(batch[0])
            else:
                engine.write_messages(batch)

    # -- inbound -----------------------------------------------------------

    def push_inbound(self, frames: list[bytes]) -> None:
        self.inbound.append(frames)
        if self.rcvhwm and len(self.inbound) >= self.rcvhwm and self.engine is not None:
            self.engine.pause_reading()

    def push_inbound_many(self, messages: list[list[bytes]]) -> None:
        self.inbound.extend(messages)
        if self.rcvhwm and len(self.inbound) >= self.rcvhwm and self.engine is not None:
            self.engine.pause_reading()

    def pop_inbound_many(self, n: int) -> list[list[bytes]]:
        inbound = self.inbound
        if n >= len(inbound):  # all of it (recv_many on a backlog): copied in C, not popped one by one
            out = list(inbound)
            inbound.clear()
        else:
            out = [inbound.popleft() for _ in range(n)]
        engine = self.engine
        if engine is not None and engine.reading_paused and len(inbound) < self.resume_at:
            engine.resume_reading()
        return out

    def pop_inbound(self) -> list[bytes]:
        frames = self.inbound.popleft()
        engine = self.engine
        if engine is not None and engine.reading_paused and len(self.inbound) < self.resume_at:
            engine.resume_reading()
        return frames
