"""GATHER (RFC 49): fair-queues single-part messages from SCATTER peers; never sends."""

from __future__ import annotations

from ..socket_type import SocketType
from .threadsafe import SinglePart


class Gather(SinglePart):
    type = SocketType.GATHER
    can_send = False
