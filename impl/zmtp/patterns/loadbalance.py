"""Round-robin sending across the peers that can take a message (RFC 28, RFC 30)."""

from __future__ import annotations

from collections.abc import Iterable

from ..pipe import Pipe
from ..socket import Socket


class LoadBalanced(Socket):
    """Keeps the list of pipes eligible for round-robin sending."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._out_pipes: list[Pipe] = []

    def pipe_usable(self, pipe: Pipe) -> None:
        if pipe not in self._out_pipes:
            self._out_pipes.append(pipe)

    def pipe_unusable(self, pipe: Pipe) -> None:
        if pipe in self._out_pipes:
            self._out_pipes.remove(pipe)

    async def send_waiting(self, frames: list[bytes]) -> None:
        await self._lb_send(frames, self._out_pipes)

    def send_now(self, frames: list[bytes]) -> bool:
        pipes = self._out_pipes
        if len(pipes) == 1:  # one peer (the common case): no turn to take
            return pipes[0].send(frames)
        return self._lb_try(frames, pipes) is not None

    async def send_many(self, messages: Iterable[Iterable[bytes]]) -> int:
        """With one peer (the throughput case) the whole batch is encoded and
        written at once; with several, messages are dealt out one by one."""
        if len(self._out_pipes) != 1:
            return await super().send_many(messages)
        batch = self._whole_batch(messages)
        done = 0
        while done < len(batch):
            pipes = self._out_pipes
            if len(pipes) == 1:
                took = pipes[0].send_many(batch[done:] if done else batch)
                done += took
                if took:
                    continue
            await self.send_waiting(batch[done])  # wait for room (or for the peer set to change)
            done += 1
        return done
