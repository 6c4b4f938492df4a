"""SCATTER (RFC 49): round-robin to GATHER peers, single-part; never receives."""

from __future__ import annotations

from ..pipe import Pipe
from ..socket_type import SocketType
from .loadbalance import LoadBalanced
from .threadsafe import SinglePart


class Scatter(SinglePart, LoadBalanced):
    type = SocketType.SCATTER
    can_recv = False

    def deliver(self, pipe: Pipe, messages: list[list[bytes]]) -> None:
        for _ in messages:
            self._dropped("unexpected")  # nothing may be read from a SCATTER, so nothing is kept
