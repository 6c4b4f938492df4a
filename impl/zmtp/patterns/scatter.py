"""SCATTER (RFC 49): round-robin to GATHER peers, single-part; never receives."""

from __future__ import annotations

from ..pipe import Pipe
from ..socket_type import SocketType
from .loadbalance import LoadBalanced
from .threadsafe import SinglePart


class Scatter(SinglePart, LoadBalanced):
    type = SocketType.SCATTER
    can_recv = False

    def _deliver(self, pipe: Pipe, frames: list[bytes]) -> None:
        self._dropped("unexpected")  # nothing may be read from a SCATTER, so nothing is kept
