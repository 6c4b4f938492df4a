"""The live peer's application during a replay: it sends, receives and subscribes as the capture shows."""

from __future__ import annotations

import asyncio
from typing import Any

from .. import protocol
from ..capture.dissect import MORE, Item

# Socket types whose application receives what the other side sends (others only see subscriptions).
RECEIVES = {"REQ", "REP", "DEALER", "ROUTER", "PULL", "PAIR", "SUB", "XSUB"}


class PeerApplication:
    """Drives the live peer's application so that it sends what the captured peer sent, when it did."""

    def __init__(self, agent: Any, sock: str, socket_type: str) -> None:
        self.agent, self.sock, self.type = agent, sock, socket_type
        self.unread = 0  # messages the harness sent that the live application has not received yet
        self.routing_id: bytes | None = None
        self.in_message = False
        self.published = False

    def saw_from_harness(self, it: Item) -> None:
        if it.kind == "frame" and not (it.flags or 0) & MORE and self.type in RECEIVES:
            self.unread += 1

    async def _drain(self) -> None:
        while self.unread:
            self.unread -= 1
            try:
                resp = await self.agent.request("recv", socket=self.sock, timeout=2)
            except protocol.AgentError:
                return
            frames = protocol.decode_frames(resp["frames"])
            if self.type == "ROUTER" and frames:
                self.routing_id = frames[0]

    async def before(self, it: Item, items: list[Item]) -> None:
        """Before the peer's item `it` is due: make its application send or subscribe as the capture shows."""
        if it.kind == "command" and it.name in ("SUBSCRIBE", "CANCEL") and self.type in ("SUB", "XSUB"):
            op = "subscribe" if it.name == "SUBSCRIBE" else "unsubscribe"
            await self.agent.request(op, socket=self.sock, topic=bytes(it.body).hex())
            return
        if it.kind != "frame":
            return
        first = not self.in_message
        self.in_message = bool((it.flags or 0) & MORE)
        if not first:
            return
        # The first frame of a message the peer sent: the application sends the whole message.
        message = []
        for f in items[items.index(it) :]:
            if f.kind == "frame":
                message.append(bytes(f.body))
                if not (f.flags or 0) & MORE:
                    break
        if self.type in ("SUB", "XSUB") and len(message) == 1 and message[0][:1] in (b"\x00", b"\x01"):
            # A ZMTP 3.0 subscription travels as a message; the application subscribes.
            op = "subscribe" if message[0][:1] == b"\x01" else "unsubscribe"
            await self.agent.request(op, socket=self.sock, topic=message[0][1:].hex())
            return
        await self._drain()
        if self.type in ("PUB", "XPUB") and not self.published:
            await asyncio.sleep(0.1)  # the harness's subscriptions are on their way in
        self.published = True
        if self.type in ("REQ", "REP") and message and message[0] == b"":
            message = message[1:]  # the envelope delimiter is the socket's to add
        if self.type == "ROUTER":
            message = [self.routing_id or b"", *message]
        await self.agent.request("send", socket=self.sock, frames=protocol.encode_frames(message), timeout=2)
