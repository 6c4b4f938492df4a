"""The live peer's side of a replay: its bytes decoded into items as they arrive, and CURVE boxes unboxed."""

from __future__ import annotations

import asyncio
from typing import Any

from ..capture.dissect import Decoder, Item


class LiveSide:
    """The live peer's bytes as they arrive, decoded into items with the dissector."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.data = bytearray()
        self.taken = 0  # items already compared
        self.closed = False

    def skip_received(self) -> None:
        """Count everything received so far as compared (what cannot be compared is not extra)."""
        self.taken = len(self._complete())

    def _complete(self) -> list[Item]:
        dec = Decoder()
        dec.decode(bytes(self.data))
        return [it for it in dec.items if it.kind != "truncated"]

    async def next(self, timeout: float) -> Item | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            items = self._complete()
            if len(items) > self.taken:
                self.taken += 1
                return items[self.taken - 1]
            left = deadline - loop.time()
            if left <= 0 or self.closed:
                return None
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                return None
            except ConnectionError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.data += chunk

    def feed_core(self, core: Any, start: int, end: int | None = None) -> int:
        """Hand the bytes from `start` up to `end` (default: all) to a sans-I/O connection; returns `end`."""
        end = len(self.data) if end is None else end
        if start < end:
            core.receive(bytes(self.data[start:end]))
        return max(start, end)


def inner_item(it: Item, flags: int | None = None, body: bytes | None = None) -> Item:
    """The frame or command inside an opened MESSAGE, as the dissector would show it unboxed."""
    flags = it.fields["inner_flags"] if flags is None else flags
    body = bytes(it.fields["plaintext"]) if body is None else body
    if flags & 0x02 and body and 1 + body[0] <= len(body):
        n = body[0]
        name = body[1 : 1 + n].decode("ascii", errors="replace")
        raw = (
            bytes([0x04, len(body)]) + body if len(body) < 256 else bytes([0x06]) + len(body).to_bytes(8, "big") + body
        )
        return Item("command", it.offset, raw, 0x04, name, body[1 + n :], {"size": len(body)})
    more = flags & 0x01
    raw = (
        bytes([more, len(body)]) + body
        if len(body) < 256
        else bytes([more | 0x02]) + len(body).to_bytes(8, "big") + body
    )
    return Item("frame", it.offset, raw, more, body=body, fields={"size": len(body), "long": len(body) >= 256})
