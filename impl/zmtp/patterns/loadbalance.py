"""Round-robin sending across the peers that can take a message (RFC 28, RFC 30)."""

from __future__ import annotations

from ..pipe import Pipe
from ..socket import Socket


class LoadBalanced(Socket):
    """Keeps the list of pipes eligible for round-robin sending."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._out_pipes: list[Pipe] = []

    def _pipe_usable(self, pipe: Pipe) -> None:
        if pipe not in self._out_pipes:
            self._out_pipes.append(pipe)

    def _pipe_unusable(self, pipe: Pipe) -> None:
        if pipe in self._out_pipes:
            self._out_pipes.remove(pipe)

    async def _send(self, frames: list[bytes]) -> None:
        await self._lb_send(frames, self._out_pipes)

    def _send_nowait(self, frames: list[bytes]) -> bool:
        return self._lb_try(frames, self._out_pipes) is not None
