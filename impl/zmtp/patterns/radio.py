"""RADIO (RFC 48): sends each message to the DISH peers that joined its group.

Over ZMTP the membership check is ours (RFC 37): a DISH says JOIN and
LEAVE, and a message goes out as two frames, its group with MORE set and
its body. Group matching is exact. A peer at its high-water mark misses the
message; sending never waits.

Joins are counted per peer, as libzmq 4.3 does where the RFCs are silent:
a peer that sends JOIN twice for a group needs two LEAVEs to leave it.
"""

from __future__ import annotations

from collections import Counter

from .. import command
from ..pipe import Pipe
from ..socket_type import SocketType
from .threadsafe import SinglePart, _group


class Radio(SinglePart):
    type = SocketType.RADIO
    can_recv = False

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._joined: dict[Pipe, Counter[bytes]] = {}

    def group_changed(self, pipe: Pipe, group: bytes, join: bool) -> None:
        groups = self._joined.setdefault(pipe, Counter())
        if join:
            groups[group] += 1
        elif groups[group] > 1:
            groups[group] -= 1
        else:
            groups.pop(group, None)  # a LEAVE for a group never joined is ignored, as libzmq does

    def pipe_detached(self, pipe: Pipe) -> None:
        super().pipe_detached(pipe)
        self._joined.pop(pipe, None)  # a DISH that comes back joins again

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        for _ in messages:
            self._dropped("unexpected")  # "SHALL silently discard any messages that dishes send it"

    def _publish(self, group: bytes, body: bytes) -> None:
        msg = [group, body]
        if self.options.bugs.radio_ignores_joins:
            for pipe in self._pipes:
                if pipe.live and not pipe.send(msg):
                    self._dropped("hwm")
            return
        for pipe, groups in self._joined.items():
            if pipe.live and group in groups and not pipe.send(msg):
                self._dropped("hwm")

    async def send(self, data: bytes, group: bytes | str = b"") -> None:
        """Send `data` to every DISH that joined `group` (at most 255 octets, no zero octet)."""
        self._check_open()
        self._publish(command.check_group(_group(group)), bytes(data))

    def send_now(self, frames: list[bytes]) -> bool:
        self._publish(b"", frames[0])  # a message sent without a group is in the empty group, as in libzmq
        return True
