"""DISH (RFC 48): receives the messages of the groups it joined from RADIO peers.

`join` and `leave` send JOIN and LEAVE commands to every RADIO (and JOINs
again to one that reconnects). Messages are filtered here as well, by exact
group match, so that nothing of a group arrives after `leave` returns.
`recv_message()` gives each message's group.

As libzmq 4.3 does where the RFCs are silent: joining a group twice, or
leaving one not joined, raises InvalidState. Unlike the classic types, a
full queue does not slow the RADIO down: RFC 48 has the DISH discard what
does not fit.
"""

from __future__ import annotations

from dataclasses import replace

from .. import command
from ..errors import InvalidState
from ..pipe import Pipe
from ..socket import ReceivedMessage
from ..socket_type import SocketType
from .threadsafe import SinglePart, _group


class Dish(SinglePart):
    type = SocketType.DISH
    can_send = False

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._groups: set[bytes] = set()
        self._last_group: bytes | None = None

    @property
    def groups(self) -> frozenset[bytes]:
        return frozenset(self._groups)

    def _tell_radios(self, group: bytes, join: bool) -> None:
        if self.options.bugs.dish_never_joins:
            return
        for pipe in self._pipes:
            if pipe.live and pipe.engine is not None:
                pipe.engine.send_group(group, join)

    def join(self, group: bytes | str) -> None:
        self._check_open()
        g = command.check_group(_group(group))
        if g in self._groups:
            raise InvalidState(f"already joined group {g!r}")
        self._groups.add(g)
        self._tell_radios(g, True)

    def leave(self, group: bytes | str) -> None:
        self._check_open()
        g = _group(group)
        if g not in self._groups:
            raise InvalidState(f"group {g!r} was not joined")
        self._groups.remove(g)
        self._tell_radios(g, False)

    def pipe_attached(self, pipe: Pipe) -> bool:
        assert pipe.engine is not None
        if self.options.bugs.dish_never_joins:
            return True
        for group in self._groups:
            pipe.engine.send_group(group, True)
        return True

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        for frames in messages:
            # The connection has checked the layout: frames are [group, body].
            if frames[0] not in self._groups:
                self._dropped("unsubscribed")
            elif pipe.rcvhwm and len(pipe.inbound) >= pipe.rcvhwm:
                self._dropped("hwm")  # "SHALL silently discard messages if the queue for a radio is full"
            else:
                pipe.inbound.append(frames)
        if pipe.inbound:
            self._now_readable(pipe)
        else:
            self._readable.set()

    def filter_in(self, pipe: Pipe, frames: list[bytes]) -> list[bytes] | None:
        group = frames[0]
        if group not in self._groups:
            return None  # left after it was queued
        self._last_group = group
        return [frames[1]]

    async def recv_message(self) -> ReceivedMessage:
        msg = await super().recv_message()
        return replace(msg, group=self._last_group)
